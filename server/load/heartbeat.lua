-- wrk script: a device's heartbeat (a no-op after the first: the hottest write path).
wrk.method = "POST"
wrk.body = '{"activity":"ACTIVE"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-genesys-access-token"
