-- Shared by the wrk scripts here: reading a file, and the one-line report
-- ("p50 .. ms, p99 .. ms, non-2xx N, socket errors N") that notes quote.
-- Loaded with: dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function socket_errors(summary)
  return summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
end

function report(summary, latency)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, non-2xx %d, socket errors %d\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status, socket_errors(summary)))
end
