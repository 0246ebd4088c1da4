-- Heartbeats rotating over many claimed tasks: lines "<body>\t<token>" from HB_FILE.
-- With NO_TOKEN=1 the header is left out (for the bare baseline endpoint).
-- Run by bench/lib/wrk.ts (-t1); `done` prints one JSON line for it.
local reqs = {}
local i = 0
init = function()
  local noToken = os.getenv("NO_TOKEN") == "1"
  for line in io.lines(os.getenv("HB_FILE")) do
    local body, token = line:match("^(.-)\t(.*)$")
    local headers = { ["Content-Type"] = "application/json" }
    if not noToken then headers["X-Trace-Task-Capability"] = token end
    reqs[#reqs + 1] = wrk.format("POST", wrk.path, headers, body)
  end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
