#!/bin/sh
# A real IPFS RPC daemon for test/storage/kubo-daemon.test.ts on a machine without Kubo: the
# deprecated `ipfs` 0.66 npm package (js-ipfs 0.18.1) run as `jsipfs daemon --offline`, installed
# OUTSIDE the project (it is not a dependency; ≈ 290 MB, ≈ 3 min to install) and listening on
# 127.0.0.1 only, with no swarm, bootstrap or delegate addresses.
#
#   scripts/jsipfs-daemon.sh start     # install if needed, init if needed, start; prints IPFS_API_URL
#   IPFS_API_URL=http://127.0.0.1:45001 node scripts/run-tests.mjs storage/kubo-daemon
#   scripts/jsipfs-daemon.sh stop
#
# JSIPFS_DIR (default /tmp/m2m-jsipfs) holds the package, the repository and the log;
# JSIPFS_PORT (default 45001) is the RPC API port (the gateway and gRPC ports are the next ones).
# npm test never needs this: without IPFS_API_URL the real-daemon tests are reported skipped.
set -eu

DIR=${JSIPFS_DIR:-/tmp/m2m-jsipfs}
PORT=${JSIPFS_PORT:-45001}
REPO="$DIR/repo"
PIDFILE="$DIR/daemon.pid"
URL="http://127.0.0.1:$PORT"

running() {
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
    if running; then
        echo "already running (pid $(cat "$PIDFILE")): IPFS_API_URL=$URL"
        return 0
    fi
    mkdir -p "$DIR"
    if [ ! -f "$DIR/node_modules/ipfs/src/cli.js" ]; then
        echo "installing ipfs@0.66 into $DIR (≈ 290 MB, a few minutes)"
        (cd "$DIR" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund ipfs@0.66)
    fi
    # js-ipfs 0.18 calls Promise.withResolvers, which Node 20 lacks.
    cat >"$DIR/polyfill.mjs" <<'EOF'
Promise.withResolvers ??= () => {
    let resolve, reject;
    const promise = new Promise((a, b) => {
        resolve = a;
        reject = b;
    });
    return { promise, resolve, reject };
};
EOF
    if [ ! -f "$REPO/config" ]; then
        IPFS_PATH="$REPO" node --import "$DIR/polyfill.mjs" "$DIR/node_modules/ipfs/src/cli.js" init --empty-repo
    fi
    # Local only, on every start (so a changed JSIPFS_PORT applies too).
    node -e '
        const fs = require("fs");
        const [path, port] = process.argv.slice(1);
        const c = JSON.parse(fs.readFileSync(path, "utf8"));
        c.Addresses.Swarm = [];
        c.Addresses.Delegates = [];
        c.Addresses.API = `/ip4/127.0.0.1/tcp/${port}`;
        c.Addresses.Gateway = `/ip4/127.0.0.1/tcp/${Number(port) + 1}`;
        c.Addresses.RPC = `/ip4/127.0.0.1/tcp/${Number(port) + 2}`;
        c.Bootstrap = [];
        c.Discovery = { MDNS: { Enabled: false, Interval: 10 }, webRTCStar: { Enabled: false } };
        fs.writeFileSync(path, JSON.stringify(c, null, 2));
    ' "$REPO/config" "$PORT"
    IPFS_PATH="$REPO" nohup node --import "$DIR/polyfill.mjs" "$DIR/node_modules/ipfs/src/cli.js" daemon --offline \
        >"$DIR/daemon.log" 2>&1 &
    echo $! >"$PIDFILE"
    i=0
    until curl -fsS -X POST "$URL/api/v0/version" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 120 ] || ! running; then
            echo "the daemon did not come up; log: $DIR/daemon.log" >&2
            tail -20 "$DIR/daemon.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "started (pid $(cat "$PIDFILE")): IPFS_API_URL=$URL"
}

stop() {
    if running; then
        kill "$(cat "$PIDFILE")"
        echo "stopped pid $(cat "$PIDFILE")"
    else
        echo "not running"
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if running; then echo "running (pid $(cat "$PIDFILE")): IPFS_API_URL=$URL"; else echo "not running"; fi ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
