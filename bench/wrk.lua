-- One wrk script for every HTTP scenario of the suite (bench/wrk.py runs it).
--
-- BENCH_MODE  get    : plain GET of the URL (baselines, /api/v1/config)
--             post   : POST the lines of BENCH_DATA in turn (open, reply: bodies for existing threads)
--             create : POST the lines of BENCH_DATA in turn, each with a fresh access_token put in
--                      place of @@TOKEN@@ (a thread creation needs a token no thread has yet)
-- BENCH_DATA  a file: one JSON body per line; for create, the first line is a 28-character
--             prefix made at random, which BENCH_RUN (28 characters, new for each wrk run) replaces,
--             so no two runs make the same token.
-- BENCH_PATH  the request path for post/create.
--
-- Every thread counts the statuses it got; done() prints one line `BENCH_RESULT {json}`.

local mode = os.getenv("BENCH_MODE") or "get"
local data_path = os.getenv("BENCH_DATA")
local path = os.getenv("BENCH_PATH") or "/"
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local function b64digits(n, width)
   local out = {}
   for i = 1, width do
      local d = n % 64
      out[width - i + 1] = B64:sub(d + 1, d + 1)
      n = math.floor(n / 64)
   end
   return table.concat(out)
end

function init(args)
   statuses = {}
   bodies = {}
   counter = 0
   prefix = ""
   if data_path ~= nil and mode ~= "get" then
      local first = true
      for line in io.lines(data_path) do
         if mode == "create" and first then
            -- 28 random characters + 2 for this thread + 12 for the counter + "A" = 43:
            -- the canonical URL-safe base64 of 32 bytes (the last character carries 4 bits).
            prefix = (os.getenv("BENCH_RUN") or line) .. b64digits(id, 2)
         elseif #line > 0 then
            table.insert(bodies, line)
         end
         first = false
      end
   end
   -- Threads start at different bodies, so two threads never send the same one at once.
   counter = id * 7919
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   if mode == "get" then
      return wrk.format("GET", nil, nil, nil)
   end
   counter = counter + 1
   local body = bodies[(counter % #bodies) + 1]
   if mode == "create" then
      body = body:gsub("@@TOKEN@@", prefix .. b64digits(counter, 12) .. "A", 1)
   end
   return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      local got = thread:get("statuses")
      for status, n in pairs(got) do
         counts[status] = (counts[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      table.insert(parts, string.format('"%d": %d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_ms": %.3f, "p90_ms": %.3f, ' ..
      '"p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, "connect_errors": %d, "read_errors": %d, ' ..
      '"write_errors": %d, "timeouts": %d, "non_2xx_3xx": %d, "statuses": {%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, latency.mean / 1000,
      e.connect, e.read, e.write, e.timeout, e.status, table.concat(parts, ", ")))
end
