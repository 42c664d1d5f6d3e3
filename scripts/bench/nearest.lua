-- wrk script: nearest-driver queries at random pickups around BENCH_LAT/BENCH_LON
-- (±BENCH_SPREAD degrees of latitude, twice that of longitude), with a Bearer key.
local key = os.getenv("BENCH_KEY")
local lat0 = tonumber(os.getenv("BENCH_LAT"))
local lon0 = tonumber(os.getenv("BENCH_LON"))
local spread = tonumber(os.getenv("BENCH_SPREAD"))
local query = os.getenv("BENCH_QUERY") or "limit=10"
local threads = 0

wrk.headers["Authorization"] = "Bearer " .. key

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  math.randomseed(os.time() + (id or 0) * 7919)
end

function request()
  local lat = lat0 + (math.random() - 0.5) * 2 * spread
  local lon = lon0 + (math.random() - 0.5) * 4 * spread
  return wrk.format("GET", string.format("/v1/drivers/nearest?lat=%.6f&lon=%.6f&%s", lat, lon, query))
end
