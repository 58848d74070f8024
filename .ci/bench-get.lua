-- wrk script for .ci/bench: GET the URL's path with each request signed in
-- as the next account, round robin over a file of "Cookie" or
-- "Authorization" header values, one per line.
-- wrk -s .ci/bench-get.lua URL -- HEADER_NAME VALUES_FILE
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  header = args[1]
  values = {}
  for line in io.lines(args[2]) do
    if #line > 0 then table.insert(values, line) end
  end
  counter = 0
end

function request()
  counter = counter + 1
  local v = values[(counter + id) % #values + 1]
  return wrk.format("GET", nil, { [header] = v }, nil)
end
