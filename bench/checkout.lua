-- wrk script of bench/checkout.py: every request is one full checkout, POST /api/v1/orders.
--
--   wrk -tN -cN -s bench/checkout.lua URL/api/v1/orders -- TOKENS_FILE PRODUCT_IDS TAG STOP DIVISION N [EXPECTED [START_US [EXTRA]]]
--
-- TOKENS_FILE: one bearer token a line (buyers, rotated); PRODUCT_IDS: comma-separated ids
-- (rotated, one unit each); TAG: prefix of the idempotency keys (unique per run); STOP: "stop"
-- makes a connection's buyer give up at its first 409 (sold out), "once" after its first answer
-- whatever it is (bench/campaigns.py's flash-sale crowd: each buyer asks once), anything else
-- keeps going; DIVISION: the village code of the delivery address; N: the number of wrk threads;
-- EXPECTED (optional, "" for none): the total in fen the buyer was shown, sent as
-- expected_total_fen; START_US (optional): a moment on CLOCK_MONOTONIC in microseconds before
-- which no first request is sent (wrk's delay()), so a crowd of threads, created one after the
-- other, asks at once; EXTRA (optional): more members of the order's JSON body, e.g.
-- '"flash_items":[7]' (the flash-sale prices the buyer buys at, as the cart showed them).
--
-- With "once", every answer is also kept (status, the error code of a 4xx, arrival, latency):
-- the crowd's experience is all its answers, not only the orders placed.
--
-- Run with one connection per thread (-tN -cN): request() and response() of a thread then
-- alternate strictly, so the time between them is that request's latency, measured here with
-- CLOCK_MONOTONIC (LuaJIT's FFI, the clock of Python's time.monotonic). done() prints each
-- order's arrival and latency, so bench/checkout.py can count a window of the run and keep the
-- orders placed apart from the 409s (wrk's own histogram mixes every status and the whole run).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } gdm_bench_timespec;
int clock_gettime(int clock_id, gdm_bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("gdm_bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

-- main state: hand out thread ids, keep the threads for done()
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- thread state
local tokens, products, tag, stop_on_409, once, division
local expected = ""
local extra = ""
local start_us = 0
local nthreads = 1
local counter = 0
local sent_at = nil
counts = {}        -- status -> responses
placed = {}        -- per 2xx answer: "arrival:latency", microseconds (arrival on CLOCK_MONOTONIC)
first_sent = 0     -- when this thread sent its first request
missing_secret = 0 -- 2xx answers without a payment client_secret
answers = {}       -- with "once": per answer "status:code:arrival:latency" (code "-" if none)

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(tokens, line) end
  end
  products = {}
  for id in string.gmatch(args[2], "%d+") do table.insert(products, id) end
  tag = args[3]
  stop_on_409 = args[4] == "stop"
  once = args[4] == "once"
  division = args[5]
  nthreads = tonumber(args[6]) or 1
  if args[7] ~= nil and #args[7] > 0 then expected = '"expected_total_fen":' .. args[7] .. ',' end
  start_us = tonumber(args[8]) or 0
  -- more fields of the order, as JSON members (e.g. '"flash_items":[7]')
  if args[9] ~= nil and #args[9] > 0 then extra = args[9] .. ',' end
end

-- wrk calls request() once on its first thread to check the script, so "the first request"
-- is the first call of delay() (called before each request() of a real one), not counter == 0.
local waited = false

function delay()
  if start_us == 0 or waited then return 0 end
  waited = true
  local wait_ms = (start_us - now_us()) / 1000
  if wait_ms < 0 then return 0 end
  return math.floor(wait_ms)
end

function request()
  if tokens == nil then -- wrk checks the script once in its main state, before any init()
    return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, "{}")
  end
  counter = counter + 1
  local n = tid + nthreads * counter -- distinct across threads: spreads buyers and products
  local body = '{"items":[{"product_id":' .. products[n % #products + 1] .. ',"quantity":1}],'
    .. '"idempotency_key":"' .. tag .. "-" .. tid .. "-" .. counter .. '",'
    .. expected .. extra .. '"payment_method":"card","delivery":"home",'
    .. '"address":{"recipient":"陈小姐","phone":"13912345678","division_code":"' .. division
    .. '","detail":"幸福路8号"}}'
  sent_at = now_us()
  if first_sent == 0 then first_sent = sent_at end
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[n % #tokens + 1],
  }, body)
end

function response(status, headers, body)
  local now = now_us()
  counts[status] = (counts[status] or 0) + 1
  if status >= 200 and status < 300 then
    if sent_at ~= nil then
      table.insert(placed, string.format("%.0f:%.0f", now, now - sent_at))
    end
    if not string.find(body, '"client_secret": *"') then
      missing_secret = missing_secret + 1
    end
  elseif status == 409 and stop_on_409 then
    wrk.thread:stop()
  end
  if once then
    local code = "-"
    if status >= 400 then code = string.match(body, '"code": *"([%w_]+)"') or "-" end
    table.insert(answers, string.format("%d:%s:%.0f:%.0f", status, code, now, now - (sent_at or now)))
    wrk.thread:stop()
  end
  sent_at = nil
end

-- Prints every placed order's arrival and latency; bench/checkout.py computes the rates and
-- percentiles over the part of the run it counts (after the pipeline filled).
function done(summary, latency, requests)
  local counts_all, missing, first = {}, 0, nil
  for i, thread in ipairs(threads) do
    io.write(string.format("bench_placed_%d: %s\n", i, table.concat(thread:get("placed"), " ")))
    local answered = thread:get("answers")
    if #answered > 0 then
      io.write(string.format("bench_answers_%d: %s\n", i, table.concat(answered, " ")))
    end
    for status, n in pairs(thread:get("counts")) do
      counts_all[status] = (counts_all[status] or 0) + n
    end
    missing = missing + thread:get("missing_secret")
    local f = thread:get("first_sent")
    if f > 0 and (first == nil or f < first) then first = f end
  end
  for status, n in pairs(counts_all) do
    io.write(string.format("bench_status_%d: %d\n", status, n))
  end
  io.write(string.format("bench_missing_secret: %d\n", missing))
  io.write(string.format("bench_first_sent_us: %.0f\n", first or 0))
end
