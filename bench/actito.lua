-- wrk script: one ONE_BY_ONE custom-action envelope per request, each with its own
-- id (so none is a duplicate) and a pass picked from the seeded ones.
-- Environment: API_KEY, PASSES (how many seeded passes), RATE (requests/s, 0 = as fast as possible).
local counter = 0
local threads = {}

-- Each thread gets its number as the global `thread_id` (a `local` of that name
-- would shadow it, and both threads would then send the same ids).
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("API_KEY")
  passes = tonumber(os.getenv("PASSES") or "1000")
  rate = tonumber(os.getenv("RATE") or "0")
  connections = tonumber(os.getenv("CONNECTIONS") or "1")
end

function request()
  counter = counter + 1
  local n = counter % passes
  local body = string.format(
    '{"id":"bench-%d-%d-%d","data":{"actionParameters.points":%d,"actionParameters.campaignId":"bench","profileAttributes.emailAddress":"p%d@bench.test","_links":{"notifyOK":{"href":"http://127.0.0.1:3901/ca/OK_%d"},"notifyKO":{"href":"http://127.0.0.1:3901/ca/KO_%d"}}}}',
    os.time(), thread_id, counter, counter, n, counter, counter)
  return wrk.format("POST", nil, {["X-API-KEY"] = key, ["Content-Type"] = "application/json"}, body)
end

function delay()
  if rate > 0 then
    return 1000 * connections / rate
  end
  return 0
end
