#!/usr/bin/env bash
# `make demo`: freeze examples/hello, serve it with `isapi-freeze serve` (isapi-host under
# Wine) on a loopback port in the background, send one request with curl, print the whole
# response, and stop the server by its PID (SIGTERM stops it cleanly).
set -euo pipefail
cli=$1 python=$2 stubs=$3
dist=target/demo/dist
port=${DEMO_PORT:-8085}
"$cli" examples/hello/hello.py --python "$python" --stubs "$stubs" --dist-dir "$dist"
log=target/demo/serve.log
mkdir -p target/demo
"$cli" serve "$dist" --stubs "$stubs" --listen "127.0.0.1:$port" >"$log" 2>&1 </dev/null &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; true' EXIT
for _ in $(seq 1 240); do
    grep -q "listening on" "$log" 2>/dev/null && break
    kill -0 $server 2>/dev/null || break
    sleep 0.5
done
grep -q "listening on" "$log" || { echo "the server did not start:"; cat "$log"; exit 1; }
echo "\$ curl -i 'http://127.0.0.1:$port/hello/world?name=demo'"
curl -sS -i "http://127.0.0.1:$port/hello/world?name=demo"
