-- wrk script: POST /v1/search?k=5 with one PNG as the raw body.
--   wrk -t2 -c64 -d30s -s scripts/load/search.lua http://127.0.0.1:8080 -- IMAGE
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
function init(args)
  wrk.body = read_file(args[1])
  wrk.method = "POST"
  wrk.path = "/v1/search?k=5"
  wrk.headers["Content-Type"] = "image/png"
end

function done(summary, latency, requests) report(summary, latency) end
