-- wrk script for benchmarks/web.py.
--
-- WRK_REQUESTS names a file with one request per line: method, path, cookie header, CSRF token
-- and form body, separated by tabs (the body may be empty). Each of the WRK_THREADS threads
-- cycles through its own share of the lines, so requests for different students never share a
-- thread's rotation. At the end it prints one line, "WRK_JSON {...}", with wrk's summary, the
-- latency percentiles in microseconds and the number of responses per HTTP status: wrk itself
-- only counts statuses >= 400 as errors, and a form re-rendered with 200 is a failed submit too.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

local function format_request(fields)
  local method, path, cookie, csrf, body = fields[1], fields[2], fields[3], fields[4], fields[5]
  local headers = {}
  if cookie ~= "" then
    headers["Cookie"] = cookie
  end
  if method == "POST" then
    -- Django checks the Origin header against the host on every unsafe request.
    local origin = "http://" .. wrk.host .. ":" .. wrk.port
    headers["Origin"] = origin
    headers["Referer"] = origin .. path
    headers["X-CSRFToken"] = csrf
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  if body == "" then
    body = nil
  end
  return wrk.format(method, path, headers, body)
end

function init(args)
  statuses = {}
  prepared = {}
  local total = tonumber(os.getenv("WRK_THREADS") or "1")
  local all = {}
  local index = 0
  for line in io.lines(os.getenv("WRK_REQUESTS")) do
    if line ~= "" then
      local request = format_request(split_tabs(line))
      table.insert(all, request)
      if index % total == thread_index then
        table.insert(prepared, request)
      end
      index = index + 1
    end
  end
  if #prepared == 0 then
    prepared = all
  end
  -- Threads start at different points so they do not move in step.
  position = thread_index % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "mean": %.1f, "max": %d, '
      .. '"p50": %d, "p75": %d, "p90": %d, "p99": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), table.concat(parts, ", ")
  ))
end
