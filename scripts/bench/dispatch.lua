-- wrk script: one automatic dispatch (POST /v1/jobs/{id}/dispatch, no body) per job id in
-- BENCH_JOBS_FILE, each id once, split between wrk's threads; a thread stops once its share is
-- answered. Counts answers by status and prints them in done().
local key = os.getenv("BENCH_KEY")
local file = os.getenv("BENCH_JOBS_FILE")
local threads = {}
local counter = 0

wrk.headers["Authorization"] = "Bearer " .. key

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  thread:set("nthreads", tonumber(os.getenv("WRK_THREADS") or "1"))
  table.insert(threads, thread)
end

function init(args)
  ids = {}
  local n = 0
  for line in io.lines(file) do
    n = n + 1
    if (n - 1) % nthreads == tid - 1 then
      table.insert(ids, line)
    end
  end
  next_i = 1
  answered = 0
  statuses = {}
end

function request()
  local id = ids[next_i]
  next_i = next_i + 1
  if id == nil then
    -- This thread's share is sent; keep idle connections busy with something free.
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "/v1/jobs/" .. id .. "/dispatch")
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if answered >= #ids then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local totals = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do
      totals[k] = (totals[k] or 0) + v
    end
  end
  for k, v in pairs(totals) do
    io.write(string.format("status %d: %d\n", k, v))
  end
end
