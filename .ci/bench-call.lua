-- wrk script for .ci/bench: each request logs a call for one (token, patient)
-- pair read from a file, round robin, with a fresh idempotency key.
-- wrk -s .ci/bench-call.lua URL -- PAIRS_FILE OCCURRED_AT NEXT_CALL_AT RUN_ID
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  targets = {}
  for line in io.lines(args[1]) do
    local token, patient = line:match("^(%S+) (%S+)$")
    if token then table.insert(targets, { token, patient }) end
  end
  run = args[4]
  counter = 0
  body = '{"occurred_at":"' .. args[2] .. '","mode":"phone","outcome":"completed",'
    .. '"duration_minutes":15,"interpreter_used":false,'
    .. '"sections":["opening","how-are-you","next-call"],"resources":[],'
    .. '"concern":"none","notes":"Benchmark call.","next_call_at":"' .. args[3] .. '",'
    .. '"flagged_for_debrief":false}'
end

function request()
  counter = counter + 1
  local t = targets[(counter * 7 + id) % #targets + 1]
  return wrk.format("POST", "/api/v1/patients/" .. t[2] .. "/calls", {
    ["Authorization"] = "Bearer " .. t[1],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. run .. "-" .. id .. "-" .. counter,
  }, body)
end
