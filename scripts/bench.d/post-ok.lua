-- wrk: POST a template-message-sized JSON body (the fake provider's own ceiling for scripts/bench outbound).
wrk.method = "POST"
wrk.body = '{"touser":"oABCDEFGHIJKLMNOPQRSTUVWXYZ12","template_id":"ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY","data":{"first":{"value":"hi"}}}'
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status or 0, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
