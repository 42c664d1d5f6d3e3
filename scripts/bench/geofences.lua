-- wrk script: geofence reads. BENCH_MODE=contains: fences holding a random point around
-- BENCH_LAT/BENCH_LON; BENCH_MODE=vehicles: vehicles inside a random fence from BENCH_FENCES.
local key = os.getenv("BENCH_KEY")
local mode = os.getenv("BENCH_MODE")
local lat0 = tonumber(os.getenv("BENCH_LAT"))
local lon0 = tonumber(os.getenv("BENCH_LON"))
local spread = tonumber(os.getenv("BENCH_SPREAD"))
local ids = {}
for line in io.lines(os.getenv("BENCH_FENCES")) do
  ids[#ids + 1] = line
end
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
  if mode == "contains" then
    local lat = lat0 + (math.random() - 0.5) * 2 * spread
    local lon = lon0 + (math.random() - 0.5) * 4 * spread
    return wrk.format("GET", string.format("/v1/geofences?contains=%.6f,%.6f", lon, lat))
  end
  return wrk.format("GET", "/v1/geofences/" .. ids[math.random(#ids)] .. "/vehicles?max_age_s=3600&limit=100")
end
