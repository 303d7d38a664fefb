-- wrk script: POST /v1/verify with two PNGs as multipart/form-data.
--   wrk -t2 -c64 -d30s -s scripts/load/verify.lua http://127.0.0.1:8080 -- IMAGE1 IMAGE2
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  local boundary = "doppel-wrk-boundary"
  local body = ""
  for i, name in ipairs({"image1", "image2"}) do
    body = body .. "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"" .. name ..
      "\"; filename=\"" .. name .. ".png\"\r\nContent-Type: image/png\r\n\r\n" .. read_file(args[i]) .. "\r\n"
  end
  body = body .. "--" .. boundary .. "--\r\n"
  wrk.method = "POST"
  wrk.path = "/v1/verify"
  wrk.body = body
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
end

function done(summary, latency, requests) report(summary, latency) end
