-- wrk script shared by every scenario (bench/run.ts writes the request list).
--
--   wrk ... -s bench/scenarios/pick.lua <base url> -- <list file> <mode>
--
-- <list file>: one request per line, "<path>\t<x-region or empty>", and
--   optionally "\t<method>" (GET when absent) and "\t<JSON body>" (sent as
--   application/json; without one a POST carries no body).
-- <mode>:
--   random  each request picks a line at random (per-thread PRNG);
--   walk    thread k of T walks its own slice of the list, in order, from
--           line floor(k*n/T); nothing is asked twice unless the slice runs
--           out, which is counted as a wrap (the origin-miss scenarios).
--
-- Each response's `x-cache-tier` header and status class (and 409s, the
-- flash-sale scenarios' "sold out") are counted per thread; done() prints
-- one line, "BENCH_RESULT {json}", that the runner parses (throughput,
-- latency percentiles in microseconds, errors, tiers).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local reqs = {}
local n = 0
local mode = "random"
local pos, first, last = 1, 1, 1

-- Counters (read by done() through thread:get, so they are globals).
t_cache, t_kv, t_redis, t_origin, t_other, t_none = 0, 0, 0, 0, 0, 0
s_2xx, s_3xx, s_4xx, s_5xx, s_409, s_401, wraps = 0, 0, 0, 0, 0, 0, 0

function init(args)
  local file = args[1]
  mode = args[2] or "random"
  local nthreads = tonumber(args[3]) or 1
  local f = assert(io.open(file, "r"))
  for line in f:lines() do
    local path, region, method, body = line:match("^([^\t]*)\t?([^\t]*)\t?([^\t]*)\t?(.*)$")
    if path and path ~= "" then
      local headers = {}
      if region and region ~= "" then headers["x-region"] = region end
      if method == nil or method == "" then method = "GET" end
      if body ~= nil and body ~= "" then
        headers["Content-Type"] = "application/json"
      else
        body = nil
        if method ~= "GET" then headers["Content-Length"] = "0" end
      end
      n = n + 1
      reqs[n] = wrk.format(method, path, headers, body)
    end
  end
  f:close()
  assert(n > 0, "empty request list " .. file)
  math.randomseed(1000003 * (id + 1) + os.time())
  first = math.floor(id * n / nthreads) + 1
  last = math.floor((id + 1) * n / nthreads)
  if last < first then first, last = 1, n end
  pos = first
end

function request()
  if mode == "walk" then
    local r = reqs[pos]
    pos = pos + 1
    if pos > last then
      pos = first
      wraps = wraps + 1
    end
    return r
  end
  return reqs[math.random(n)]
end

function response(status, headers, body)
  if status < 300 then s_2xx = s_2xx + 1
  elseif status < 400 then s_3xx = s_3xx + 1
  elseif status < 500 then
    s_4xx = s_4xx + 1
    if status == 409 then s_409 = s_409 + 1 end
    if status == 401 then s_401 = s_401 + 1 end
  else s_5xx = s_5xx + 1 end
  local tier = headers["x-cache-tier"] or headers["X-Cache-Tier"]
  if tier == nil then
    for k, v in pairs(headers) do
      if string.lower(k) == "x-cache-tier" then tier = v break end
    end
  end
  if tier == nil then t_none = t_none + 1
  elseif tier == "cache" then t_cache = t_cache + 1
  elseif tier == "kv" then t_kv = t_kv + 1
  elseif tier == "redis" then t_redis = t_redis + 1
  elseif tier == "origin" then t_origin = t_origin + 1
  else t_other = t_other + 1 end
end

function done(summary, latency, requests)
  local sum = {}
  local names = { "t_cache", "t_kv", "t_redis", "t_origin", "t_other", "t_none",
                  "s_2xx", "s_3xx", "s_4xx", "s_5xx", "s_409", "s_401", "wraps" }
  for _, name in ipairs(names) do sum[name] = 0 end
  for _, t in ipairs(threads) do
    for _, name in ipairs(names) do sum[name] = sum[name] + (tonumber(t:get(name)) or 0) end
  end
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d}',
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)),
    string.format('"tiers":{"cache":%d,"kv":%d,"redis":%d,"origin":%d,"other":%d,"none":%d}',
      sum.t_cache, sum.t_kv, sum.t_redis, sum.t_origin, sum.t_other, sum.t_none),
    string.format('"status":{"2xx":%d,"3xx":%d,"4xx":%d,"5xx":%d,"409":%d,"401":%d}', sum.s_2xx, sum.s_3xx, sum.s_4xx, sum.s_5xx, sum.s_409, sum.s_401),
    string.format('"wraps":%d', sum.wraps),
  }
  io.write("BENCH_RESULT {" .. table.concat(parts, ",") .. "}\n")
end
