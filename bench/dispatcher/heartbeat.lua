-- Heartbeats rotating over many claimed tasks: lines "<body>\t<token>" from HB_FILE.
-- With NO_TOKEN=1 the header is left out (for the bare baseline endpoint).
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
