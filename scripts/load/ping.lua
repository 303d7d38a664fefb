-- wrk script: report p50/p99 and errors for a plain GET (the HTTP-layer comparison).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function done(summary, latency, requests) report(summary, latency) end
