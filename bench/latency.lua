-- wrk script: prints the 95th percentile latency (wrk's --latency table stops at 50/75/90/99).
function done(summary, latency, requests)
  io.write(string.format("p95_us: %d\n", latency:percentile(95)))
end
