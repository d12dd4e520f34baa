-- wrk script for a burst (the thundering herd): each thread stops once it has
-- QUOTA answers (the first argument after --), tallying status codes and one
-- response header (the second argument, e.g. X-Cache). Prints one JSON object.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  header = args[2]
  seen = 0
  tally = ""
end

function response(status, headers, body)
  if seen >= quota then
    return
  end
  seen = seen + 1
  local value = headers[header] or ""
  -- one "status header-value" line per answer; summed in done()
  tally = tally .. status .. " " .. value .. "\n"
  if seen >= quota then
    wrk.thread:stop()
  end
end

done = function(summary, latency, requests)
  local statuses, values, answered = {}, {}, 0
  for _, thread in ipairs(threads) do
    for status, value in string.gmatch(thread:get("tally"), "(%d+) ([^\n]*)\n") do
      statuses[status] = (statuses[status] or 0) + 1
      values[value] = (values[value] or 0) + 1
      answered = answered + 1
    end
  end
  local function object(t)
    local parts = {}
    for k, v in pairs(t) do
      table.insert(parts, string.format('"%s": %d', k, v))
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "answered": %d, "duration_us": %d, "threads": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"statuses": %s, "header_values": %s, '
      .. '"latency_us": {"min": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, answered, summary.duration, #threads,
    e.connect, e.read, e.write, e.status, e.timeout, object(statuses), object(values),
    latency.min, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
