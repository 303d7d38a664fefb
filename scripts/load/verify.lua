-- wrk script: POST /v1/verify with two PNGs as multipart/form-data.
--   wrk -t2 -c64 -d30s -s scripts/load/verify.lua http://127.0.0.1:8080 -- IMAGE1 IMAGE2
local function read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  local boundary = "doppel-wrk-boundary"
  local body = ""
  for i, name in ipairs({"image1", "image2"}) do
    body = body .. "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"" .. name ..
      "\"; filename=\"" .. name .. ".png\"\r\nContent-Type: image/png\r\n\r\n" .. read(args[i]) .. "\r\n"
  end
  body = body .. "--" .. boundary .. "--\r\n"
  wrk.method = "POST"
  wrk.path = "/v1/verify"
  wrk.body = body
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, non-2xx %d, socket errors %d\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
