-- wrk script: print one JSON object (last line of the output) with the run's
-- counts and latency percentiles, for benchmarks/harness.py. No response()
-- function, so wrk does not parse bodies or headers: the load stays wrk's best.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function us(latency, p)
  return latency:percentile(p)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "threads": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, #threads,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, us(latency, 50), us(latency, 90), us(latency, 99), latency.max, latency.mean))
end
