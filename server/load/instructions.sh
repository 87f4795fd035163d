#!/usr/bin/env bash
# Instructions per request, route by route, under callgrind: a count that does not move with
# the machine's load, for comparing the request path before and after a change (wall-clock
# figures come from run.sh). User space only; the kernel's TCP work is not in it. Starts the
# release server (1,000 demo users) under valgrind, sends each route with wrk for $SECONDS s,
# and prints the instructions per request of each beside /healthz's.
#
#   server/load/instructions.sh            # needs valgrind and wrk (Debian packages)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_ROUTE=${SECONDS_PER_ROUTE:-4}
PORT=${PORT:-28419}
BASE=http://127.0.0.1:$PORT
for tool in valgrind wrk; do
    command -v $tool >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release -q -p presence-server --bin presence-server
WORK=$(mktemp -d)
LOG=$WORK/server.log
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" target/release/presence-server \
    --addr 127.0.0.1:$PORT --users 1000 --data-dir "$WORK/data" --simulate false >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 600); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
banner() { grep "$1" "$LOG" | grep -o "$2[^']*" | head -1 | sed "s/^$2//"; }
SYMPHONY_TOKEN=$(banner Symphony "sessionToken: ")
ROCKETCHAT_TOKEN=$(banner Rocket "X-Auth-Token: ")
RC_ID=$(banner Rocket "X-User-Id: ")
GENESYS_TOKEN=$(banner Genesys "Bearer ")
GENESYS_URL=$(grep Genesys "$LOG" | grep -o "http[^']*presences/purecloud" | head -1)
SYM_ID=$(grep Gateway "$LOG" | grep -o "users/[0-9]*" | head -1 | cut -d/ -f2)
HEALTHZ=
# route NAME [wrk args...]: zero the counters, load the route, dump, print per request.
route() {
    local name=$1
    shift
    callgrind_control -z $PID >/dev/null 2>&1
    local out
    out=$(wrk -t1 -c4 -d"${SECONDS_PER_ROUTE}s" "$@")
    callgrind_control -d route $PID >/dev/null 2>&1
    sleep 0.5
    local n dump total
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    dump=$(ls -t "$WORK"/cg.$PID.* | head -1)
    total=$(awk '/^summary:/ {print $2}' "$dump")
    local per=$((total / n))
    [ -z "$HEALTHZ" ] && HEALTHZ=$per
    local errors
    errors=$(grep -c Non-2xx <<<"$out" || true)
    printf '| %-22s | %8d | %6s | %s |\n' "$name" "$per" \
        "$(awk -v a="$HEALTHZ" -v b="$per" 'BEGIN {printf "%.2fx", a / b}')" \
        "$([ "$errors" = 0 ] && echo "$n requests" || echo "$n requests, some not 2xx")"
}
printf '| %-22s | %8s | %6s | %s |\n' route "instr/req" "healthz/route" requests
printf '| %-22s | %8s | %6s | %s |\n' --- ---: ---: ---
route "/healthz" "$BASE/healthz"
route "Symphony one user" -H "sessionToken: $SYMPHONY_TOKEN" "$BASE/pod/v3/user/$SYM_ID/presence"
route "Rocket.Chat one user" -H "X-Auth-Token: $ROCKETCHAT_TOKEN" -H "X-User-Id: $RC_ID" \
    "$BASE/api/v1/users.getPresence?userId=$RC_ID"
route "Genesys one user" -H "Authorization: Bearer $GENESYS_TOKEN" "$GENESYS_URL"
