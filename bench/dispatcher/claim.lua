-- One claim per request, each on a different queued task (ids from IDS_FILE, one a line).
-- Sends the bearer token when INTERNAL_AUTH_TOKEN is set (the bare baseline needs none).
-- Run by bench/lib/wrk.ts (-t1); `done` prints one JSON line for it.
local ids = {}
local i = 0
local headers = { ["Content-Type"] = "application/json" }
init = function()
  local token = os.getenv("INTERNAL_AUTH_TOKEN")
  if token ~= nil and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
end
request = function()
  i = i + 1
  local id = ids[i] or ids[1]
  return wrk.format("POST", wrk.path, headers, '{"task_id":"' .. id .. '"}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
