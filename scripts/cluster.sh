#!/usr/bin/env bash
# A local ThunderDB cluster on 127.0.0.1: three walservice nodes (one Raft group), a
# pageserver, two compute nodes and a proxy, each its own process with its own data directory
# and log.
#
#   scripts/cluster.sh start            start every node that is not running
#   scripts/cluster.sh stop             stop every node (SIGTERM, then SIGKILL after 30 s)
#   scripts/cluster.sh status           each node's state, and the WAL group's view
#   scripts/cluster.sh kill NODE        SIGKILL one node (wal-1 … proxy)
#   scripts/cluster.sh start NODE       start one node
#   scripts/cluster.sh stop NODE        stop one node
#
# Environment: THUNDERDB_CLUSTER_DIR (default ./thunderdb-cluster), THUNDERDB_CLUSTER_BASE_PORT
# (default 15000), THUNDERDB_BIN (default target/release/thunderdb, else target/debug/thunderdb).
# Clients connect to the proxy: PostgreSQL BASE+432, MySQL BASE+306, RESP BASE+379.
set -euo pipefail

DIR=${THUNDERDB_CLUSTER_DIR:-$PWD/thunderdb-cluster}
BASE=${THUNDERDB_CLUSTER_BASE_PORT:-15000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${THUNDERDB_BIN:-}" ]; then
    BIN=$THUNDERDB_BIN
elif [ -x "$ROOT/target/release/thunderdb" ]; then
    BIN=$ROOT/target/release/thunderdb
else
    BIN=$ROOT/target/debug/thunderdb
fi
NODES="wal-1 wal-2 wal-3 pageserver compute-1 compute-2 proxy"
HOST=127.0.0.1
WAL_NODES="$HOST:$((BASE + 1)),$HOST:$((BASE + 2)),$HOST:$((BASE + 3))"
MEMBERS="1=$HOST:$((BASE + 1)),2=$HOST:$((BASE + 2)),3=$HOST:$((BASE + 3))"
PAGESERVER="$HOST:$((BASE + 100))"

# compute-N: PostgreSQL, MySQL, RESP ports.
compute_ports() {
    local n=$1
    echo "$((BASE + 200 + 10 * n + 1)) $((BASE + 200 + 10 * n + 2)) $((BASE + 200 + 10 * n + 3))"
}

node_args() {
    case $1 in
    wal-[123])
        local id=${1#wal-}
        echo "walservice --node-id $id --listen $HOST:$((BASE + id)) --members $MEMBERS --data-dir $DIR/data/$1"
        ;;
    pageserver)
        echo "pageserver --listen $PAGESERVER --wal-nodes $WAL_NODES --data-dir $DIR/data/pageserver"
        ;;
    compute-[12])
        read -r pg my resp <<<"$(compute_ports "${1#compute-}")"
        echo "compute --listen $HOST --pg-port $pg --mysql-port $my --resp-port $resp --wal-nodes $WAL_NODES --pageserver $PAGESERVER --data-dir $DIR/data/$1"
        ;;
    proxy)
        local computes=""
        for n in 1 2; do
            read -r pg my resp <<<"$(compute_ports "$n")"
            computes="$computes${computes:+,}$HOST:$pg:$my:$resp"
        done
        echo "proxy --listen $HOST --pg-port $((BASE + 432)) --mysql-port $((BASE + 306)) --resp-port $((BASE + 379)) --computes $computes"
        ;;
    *)
        echo "unknown node '$1' (one of: $NODES)" >&2
        exit 2
        ;;
    esac
}

pid_of() {
    local f=$DIR/pids/$1.pid
    if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then cat "$f"; fi
}

start_node() {
    local node=$1
    node_args "$node" >/dev/null
    if [ -n "$(pid_of "$node")" ]; then
        echo "$node: already running (pid $(pid_of "$node"))"
        return
    fi
    mkdir -p "$DIR/data" "$DIR/logs" "$DIR/pids"
    local log=$DIR/logs/$node.log
    touch "$log"
    local want="listening on"
    case $node in compute-* | proxy) want="postgres listening on" ;; esac
    local before
    before=$(grep -c "$want" "$log" || true)
    # Object storage (layers, segments) is a directory every node shares.
    THUNDERDB_STORAGE_PATH=$DIR/objects nohup "$BIN" $(node_args "$node") >>"$log" 2>&1 &
    echo $! >"$DIR/pids/$node.pid"
    for _ in $(seq 1 600); do
        if [ "$(grep -c "$want" "$log" || true)" -gt "$before" ]; then
            echo "$node: started (pid $(cat "$DIR/pids/$node.pid")), log $log"
            return
        fi
        if [ -z "$(pid_of "$node")" ]; then
            echo "$node: exited during start; last lines of $log:" >&2
            tail -20 "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$node: not ready within 60 s; see $log" >&2
    exit 1
}

stop_node() {
    local node=$1 pid
    pid=$(pid_of "$node")
    if [ -z "$pid" ]; then
        echo "$node: not running"
        return
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { echo "$node: stopped"; rm -f "$DIR/pids/$node.pid"; return; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/pids/$node.pid"
    echo "$node: killed after 30 s"
}

kill_node() {
    local node=$1 pid
    node_args "$node" >/dev/null
    pid=$(pid_of "$node")
    if [ -z "$pid" ]; then
        echo "$node: not running"
        return
    fi
    kill -KILL "$pid"
    rm -f "$DIR/pids/$node.pid"
    echo "$node: killed (pid $pid)"
}

status() {
    for node in $NODES; do
        local pid
        pid=$(pid_of "$node")
        if [ -n "$pid" ]; then
            printf '%-11s running  pid %-8s %s\n' "$node" "$pid" "$(node_args "$node" | cut -d' ' -f1-5)"
        else
            printf '%-11s stopped\n' "$node"
        fi
    done
    echo
    "$BIN" walctl --nodes "$WAL_NODES" status || true
    echo
    echo "clients: psql -h $HOST -p $((BASE + 432)) -U thunder thunderdb   (password thunder)"
    echo "         mysql -h $HOST -P $((BASE + 306)) -u thunder -pthunder thunderdb"
    echo "         redis-cli -p $((BASE + 379))"
}

[ -x "$BIN" ] || { echo "no thunderdb binary at $BIN: run cargo build --release (or set THUNDERDB_BIN)" >&2; exit 1; }
case ${1:-} in
start)
    if [ -n "${2:-}" ]; then start_node "$2"; else for n in $NODES; do start_node "$n"; done; fi
    ;;
stop)
    if [ -n "${2:-}" ]; then
        stop_node "$2"
    else
        # Clients' way in first, the log last.
        for n in proxy compute-1 compute-2 pageserver wal-1 wal-2 wal-3; do stop_node "$n"; done
    fi
    ;;
kill)
    [ -n "${2:-}" ] || { echo "usage: $0 kill NODE" >&2; exit 2; }
    kill_node "$2"
    ;;
status) status ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
