-- One claim per request, each on a different queued task (ids from IDS_FILE). Use -t1.
local token = os.getenv("INTERNAL_AUTH_TOKEN")
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local i = 0
local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
request = function()
  i = i + 1
  local id = ids[i]
  if id == nil then id = ids[1] end
  return wrk.format("POST", "/internal/task-claim", headers, '{"task_id":"' .. id .. '"}')
end
