-- wrk script for scripts/soak: mixed traffic on one gallery. Per thread, in turn: verify (5 in
-- 10), search (3 in 10), enroll a new identity (1 in 10) and delete one enrolled at least 2000
-- requests earlier (1 in 10; the enrollment went out on another connection, so it is answered
-- by then), so the gallery stays the same size while it is written to all the time. Counts
-- 5xx and 404s per thread.
--   wrk -t2 -c64 -d600s -s scripts/load/mixed.lua URL -- ADMIN_KEY IMAGE1 IMAGE2
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local function b64(data)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((data:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local key, verifyBody, searchBody, enrollImage
local step, serial = 0, 0
local pending, first = {}, 1
server_errors, responses, missing = 0, 0, 0

function init(args)
  key = args[1]
  local a, b = read_file(args[2]), read_file(args[3])
  verifyBody = '{"image1":"' .. b64(a) .. '","image2":"' .. b64(b) .. '"}'
  searchBody = '{"image":"' .. b64(a) .. '","k":5}'
  enrollImage = b64(b)
end

function request()
  step = step + 1
  local slot = step % 10
  local json = { ["Content-Type"] = "application/json" }
  if slot == 9 and pending[first] and step - pending[first].step >= 2000 then
    local path = "/v1/identities/" .. pending[first].id
    pending[first] = nil
    first = first + 1
    return wrk.format("DELETE", path, { ["Authorization"] = "Bearer " .. key })
  elseif slot == 8 then
    serial = serial + 1
    local id = "soak-" .. wrk.thread:get("id") .. "-" .. serial
    pending[serial] = { id = id, step = step }
    return wrk.format("POST", "/v1/identities", { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key },
      '{"id":"' .. id .. '","images":["' .. enrollImage .. '"]}')
  elseif slot >= 5 then
    return wrk.format("POST", "/v1/search", json, searchBody)
  end
  return wrk.format("POST", "/v1/verify", json, verifyBody)
end

function response(status, headers, body)
  responses = responses + 1
  if status >= 500 then server_errors = server_errors + 1 end
  if status == 404 then missing = missing + 1 end
end

function done(summary, latency, requests)
  local errors, total, notFound = 0, 0, 0
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("server_errors")
    total = total + thread:get("responses")
    notFound = notFound + thread:get("missing")
  end
  io.write(string.format("soak: %d responses, %d 5xx, %d 404, %d non-2xx, socket errors %d, p50 %.2f ms, p99 %.2f ms\n", total, errors,
    notFound, summary.errors.status, socket_errors(summary),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
