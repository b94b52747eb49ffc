-- benchmarks/wrk.lua plus the 95th latency percentile, which wrk.lua does not report and the
-- forum's search target needs (benchmarks/forum.py). Loads wrk.lua from WRK_BASE_SCRIPT and
-- prints one more line after its WRK_JSON line: "WRK_P95 <microseconds>".
dofile(os.getenv("WRK_BASE_SCRIPT"))

local base_done = done

function done(summary, latency, requests)
  base_done(summary, latency, requests)
  io.write(string.format("WRK_P95 %d\n", latency:percentile(95)))
end
