#!/usr/bin/env bash
# Load benchmark of presence-server on loopback: builds the release server and the fan-out
# driver, starts the server with $USERS demo users (the demo simulation on, ~10 changes/s),
# drives each main route with wrk beside /healthz in the same run, then opens $STREAMS
# WebSocket streams (memory per idle stream, heartbeat throughput while they are open) and
# makes changes at each rate in $RATES (how many streams got every change, delivery p50/p99).
#
#   server/load/run.sh                                  # the defaults below
#   STREAMS=2000 RATES="100" DURATION=5 server/load/run.sh
#   FANOUT_RESTORE=1 server/load/run.sh                 # fan-out through a lag storm (below)
#
# Bounded: each wrk run lasts $DURATION s, each drive $DRIVE_SECONDS s plus at most 20 s of
# grace, every wait has a deadline; about 5 minutes with the defaults, plus the build.
# The load generators share the machine with the server: read the figures as ratios to
# /healthz measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."

USERS=${USERS:-100000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
STREAMS=${STREAMS:-10000}
FANOUT_SIMULATE=${FANOUT_SIMULATE:-0}
FANOUT_RESTORE=${FANOUT_RESTORE:-0}
RATES=${RATES:-"100 1000"}
DRIVE_SECONDS=${DRIVE_SECONDS:-10}
PORT=${PORT:-28417}
ADDR=127.0.0.1:$PORT
BASE=http://$ADDR

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi
# 10,000 streams need 10,000 sockets on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release -q -p presence-server --bin presence-server --example fanout
SERVER=target/release/presence-server
FANOUT=target/release/examples/fanout
WORK=$(mktemp -d)
LOG=${LOG:-target/load-server.log}

PID=
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
# start_server [ARGS...]: a fresh server on $ADDR, waited for.
start_server() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    "$SERVER" --addr "$ADDR" --users "$USERS" --data-dir "$WORK/${DATA:-data}" "$@" >"$LOG" 2>&1 &
    PID=$!
    for _ in $(seq 1 600); do
        kill -0 $PID 2>/dev/null || { cat "$LOG" >&2; echo "the server did not start (PORT=$PORT taken?)" >&2; exit 1; }
        curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS "$BASE/healthz" >/dev/null
    # The demo tokens are fresh at every start: read them from the banner.
    banner_token() { grep -o "$1[^']*" "$LOG" | head -1 | sed "s/^$1//"; }
    SYMPHONY_TOKEN=$(banner_token "sessionToken: ")
    ROCKETCHAT_TOKEN=$(banner_token "X-Auth-Token: ")
    GENESYS_TOKEN=$(grep 'Genesys' "$LOG" | grep -o "Bearer [^']*" | head -1 | cut -d' ' -f2)
    GATEWAY_TOKEN=$(grep 'Gateway' "$LOG" | grep -o "Bearer [^']*" | head -1 | cut -d' ' -f2)
    export GATEWAY_TOKEN
}
start_server

read -r SYM_ID RC_ID GEN_ID <<<"$("$FANOUT" ids)"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$PID/status"; }
threads() { awk '/^Threads/ {print $2}' "/proc/$PID/status"; }

echo "presence-server load run: $(date -u +%FT%TZ), $(nproc) cores, $USERS users, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
echo "server rss at start: $(rss) KiB, threads: $(threads)"
echo
printf '| %-34s | %10s | %8s | %9s | %9s | %s |\n' route "req/s" "vs /healthz" p50 p99 "errors"
printf '| %-34s | %10s | %8s | %9s | %9s | %s |\n' --- ---: ---: ---: ---: ---

HEALTHZ_RPS=
# run NAME [wrk args...]: one wrk run, one table row.
run() {
    local name=$1
    shift
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency "$@" 2>&1)
    local rps p50 p99 errors ratio
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$( (grep -E 'Socket errors|Non-2xx' <<<"$out" || true) | tr -s ' ' | paste -sd';' -)
    [ -z "$HEALTHZ_RPS" ] && HEALTHZ_RPS=$rps
    ratio=$(awk -v a="$rps" -v b="$HEALTHZ_RPS" 'BEGIN {printf "%.2fx", a / b}')
    printf '| %-34s | %10s | %8s | %9s | %9s | %s |\n' "$name" "$rps" "$ratio" "$p50" "$p99" "${errors:-none}"
}

run "/healthz" "$BASE/healthz"
run "Symphony one user" -H "sessionToken: $SYMPHONY_TOKEN" "$BASE/pod/v3/user/$SYM_ID/presence"
run "Rocket.Chat one user" -H "X-Auth-Token: $ROCKETCHAT_TOKEN" -H "X-User-Id: $RC_ID" \
    "$BASE/api/v1/users.getPresence?userId=$RC_ID"
run "Genesys one user" -H "Authorization: Bearer $GENESYS_TOKEN" \
    "$BASE/api/v2/users/$GEN_ID/presences/PURECLOUD"
run "heartbeat (no streams)" -s server/load/heartbeat.lua \
    "$BASE/devices/v1/users/$SYM_ID/sessions/9/heartbeat"
run "Symphony page of 1000" -H "sessionToken: $SYMPHONY_TOKEN" "$BASE/pod/v2/users/presence?limit=1000"
run "Symphony page of 5000" -H "sessionToken: $SYMPHONY_TOKEN" "$BASE/pod/v2/users/presence?limit=5000"
BEFORE=$(rss)
FULL_BYTES=$(curl -fsS -H "X-Auth-Token: $ROCKETCHAT_TOKEN" -H "X-User-Id: $RC_ID" \
    "$BASE/api/v1/users.presence" | wc -c)
run "Rocket.Chat full list" -H "X-Auth-Token: $ROCKETCHAT_TOKEN" -H "X-User-Id: $RC_ID" \
    "$BASE/api/v1/users.presence"
run "Rocket.Chat full list, gzip" -H "X-Auth-Token: $ROCKETCHAT_TOKEN" -H "X-User-Id: $RC_ID" \
    -H "Accept-Encoding: gzip" "$BASE/api/v1/users.presence"
echo
echo "Rocket.Chat full list: $FULL_BYTES bytes; server rss $BEFORE KiB before its runs, $(rss) KiB after, peak so far $(hwm) KiB"
echo

# The fan-out: $STREAMS streams; heartbeats while they are open; then each rate. On a fresh
# server by default; FANOUT_RESTORE=1 restores the first server's data instead, whose device
# sessions then expire en masse while the streams are open.
if [ "$FANOUT_SIMULATE" = 0 ]; then
    if [ "$FANOUT_RESTORE" = 1 ]; then
        # The first server's data directory: its ~64k simulated device sessions expire en masse
        # a minute in, and every stream lags at once (a lag storm).
        start_server --simulate false
        echo "fan-out server: the first one's data restored, no simulation; rss $(rss) KiB"
    else
        DATA=fanout-data start_server --simulate false
        echo "fan-out server: fresh, no simulation; rss $(rss) KiB"
    fi
    printf '| %-34s | %10s | %8s | %9s | %9s | %s |\n' route "req/s" "vs /healthz" p50 p99 "errors"
    printf '| %-34s | %10s | %8s | %9s | %9s | %s |\n' --- ---: ---: ---: ---: ---
    HEALTHZ_RPS=
    run "/healthz" "$BASE/healthz"
    run "heartbeat (no streams)" -s server/load/heartbeat.lua \
        "$BASE/devices/v1/users/$SYM_ID/sessions/9/heartbeat"
    echo
fi
first=1
for RATE in $RATES; do
    HOLD=0
    [ $first = 1 ] && HOLD=$((DURATION + 5))
    "$FANOUT" --addr "$ADDR" --streams "$STREAMS" --users "$USERS" --rate "$RATE" \
        --seconds "$DRIVE_SECONDS" --server-pid "$PID" --hold "$HOLD" \
        --tokens "$GATEWAY_TOKEN,$ROCKETCHAT_TOKEN,$SYMPHONY_TOKEN" --symphony-token "$SYMPHONY_TOKEN" >"$WORK/fanout.log" 2>&1 &
    DRIVER=$!
    if [ $first = 1 ]; then
        for _ in $(seq 1 1200); do
            grep -q HOLDING "$WORK/fanout.log" && break
            kill -0 $DRIVER 2>/dev/null || break
            sleep 0.1
        done
        echo "with $STREAMS streams open (server threads: $(threads)):"
        printf '| %-34s | %10s | %8s | %9s | %9s | %s |\n' route "req/s" "vs /healthz" p50 p99 "errors"
        printf '| %-34s | %10s | %8s | %9s | %9s | %s |\n' --- ---: ---: ---: ---: ---
        run "heartbeat ($STREAMS streams open)" -s server/load/heartbeat.lua \
            "$BASE/devices/v1/users/$SYM_ID/sessions/9/heartbeat"
        echo
    fi
    wait $DRIVER || true
    echo "fan-out at $RATE changes/s:"
    sed 's/^/  /' "$WORK/fanout.log"
    echo
    first=0
done
if kill -0 $PID 2>/dev/null; then
    echo "server rss at the end: $(rss) KiB, peak $(hwm) KiB, threads: $(threads)"
else
    wait $PID || echo "the server exited with status $?; its log: $LOG"
fi
