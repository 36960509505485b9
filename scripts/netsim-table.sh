#!/usr/bin/env bash
# Times a 2 MiB transfer through `udpix netsim` (20 Mbit/s, 20 ms each way, queue 100) at
# several loss rates and prints each beside the link's limit:
#   bits / (rate * (1 - loss)) + one-way delay
# Usage: scripts/netsim-table.sh [runs per loss] [extra send/recv flags, e.g. --insecure]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
extra=${2:-}
cargo build --release --quiet
bin=target/release/udpix
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export UDPIX_PASSPHRASE=netsim-table
python3 -c "import random; random.seed(7); open('$work/2mib.bin','wb').write(random.randbytes(2*1024*1024))"
mkdir "$work/out"
$bin recv --listen 127.0.0.1:17878 --out "$work/out" $extra 2>/dev/null >/dev/null &
sleep 0.3
printf '%-6s %-10s %-10s %s\n' loss median limit ratio
for loss in 0 0.05 0.10 0.20; do
  $bin netsim --listen 127.0.0.1:19000 --to 127.0.0.1:17878 --rate 20mbit --delay 20ms \
    --queue 100 --loss "$loss:0" --seed 3 2>/dev/null &
  ns=$!
  sleep 0.3
  times=()
  for _ in $(seq "$runs"); do
    ms=$($bin send 127.0.0.1:19000 "$work/2mib.bin" --json $extra 2>/dev/null \
      | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['duration_ms'])")
    times+=("$ms")
    rm -f "$work"/out/*
  done
  kill -INT $ns; wait $ns 2>/dev/null || true
  python3 - "$loss" "${times[@]}" <<'PY'
import statistics, sys
loss = float(sys.argv[1]); t = statistics.median(map(float, sys.argv[2:])) / 1000
limit = 2 * 1024 * 1024 * 8 / (20e6 * (1 - loss)) + 0.020
print(f"{loss*100:>4.0f}%  {t:>7.3f} s  {limit:>7.3f} s  {t/limit:.2f}")
PY
done
