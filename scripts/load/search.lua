-- wrk script: POST /v1/search?k=5 with one PNG as the raw body.
--   wrk -t2 -c64 -d30s -s scripts/load/search.lua http://127.0.0.1:8080 -- IMAGE
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.path = "/v1/search?k=5"
  wrk.headers["Content-Type"] = "image/png"
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, non-2xx %d, socket errors %d\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
