-- wrk script: posts pre-signed SFMC execute tokens, one per line of TOKENS (each with
-- its own jti, so none is a duplicate while the file lasts).
local tokens = {}
local i = 0

function init(args)
  local file = io.open(os.getenv("TOKENS"), "r")
  for line in file:lines() do
    table.insert(tokens, line)
  end
  file:close()
  local thread_offset = tonumber(os.getenv("OFFSET") or "0")
  i = math.random(#tokens)
end

function request()
  i = i % #tokens + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/jwt"}, tokens[i])
end
