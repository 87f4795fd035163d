-- wrk script: a device's heartbeat (a no-op after the first: the hottest write path).
wrk.method = "POST"
wrk.body = '{"activity":"ACTIVE"}'
wrk.headers["Content-Type"] = "application/json"
-- The gateway's token, fresh at every server start: run.sh passes it in the environment.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("GATEWAY_TOKEN")
