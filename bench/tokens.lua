-- wrk script: posts pre-signed SFMC execute tokens, one per line of TOKENS (each with
-- its own jti, so none is a duplicate while the file lasts). Thread k of THREADS sends
-- lines k+1, k+1+THREADS, ...: no two threads send the same token.
local tokens = {}
local i = 0
local step = 1
local threads = {}

-- Each thread gets its number as the global `thread_id`.
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = io.open(os.getenv("TOKENS"), "r")
  for line in file:lines() do
    table.insert(tokens, line)
  end
  file:close()
  step = tonumber(os.getenv("THREADS") or "2")
  i = thread_id
end

function request()
  local token = tokens[i % #tokens + 1]
  i = i + step
  return wrk.format("POST", nil, {["Content-Type"] = "application/jwt"}, token)
end
