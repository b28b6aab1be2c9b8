-- wrk script of bench/_logistics_api.py: every request is one scan, POST /api/v1/scans.
--
--   wrk -tN -cN -s bench/scans.lua URL/api/v1/scans -- TOKEN LABELS NODE_ID TAG
--
-- TOKEN: the staff's bearer token; LABELS: comma-separated parcel labels (rotated); NODE_ID: the
-- node the staff scan at; TAG: prefix of the idempotency keys (unique per run and thread). Each
-- scan is an "exception" (recorded with its note, moves nothing), so every request is a new scan
-- that the server validates, locks, authorises, writes and chains to the parcel's lots.

local nthreads = 0

function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end

local token, labels, node_id, tag
local counter = 0

function init(args)
  token = args[1]
  labels = {}
  for label in string.gmatch(args[2], "[^,]+") do table.insert(labels, label) end
  node_id = args[3]
  tag = args[4]
end

function request()
  counter = counter + 1
  local label = labels[(counter + tid) % #labels + 1]
  local body = string.format(
    '{"label":"%s","kind":"exception","node_id":%s,"note":"bench","idempotency_key":"%s-%d-%d"}',
    label, node_id, tag, tid, counter)
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end

function done(summary, latency, requests)
  io.write(string.format("completed: %d\n", summary.requests))
  io.write(string.format("status_errors: %d\n", summary.errors.status))
  io.write(string.format("p95_us: %d\n", latency:percentile(95)))
end
