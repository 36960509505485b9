#!/usr/bin/env bash
# Compares a 64 MiB loopback transfer received by the TUI (running in a tmux pane, drawing)
# with the same transfer received headless. Prints the sender's time for each and the ratio.
# Usage: scripts/tui-ratio.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release --quiet
bin=$PWD/target/release/udpix
work=$(mktemp -d)
sock="udpix-ratio-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export UDPIX_PASSPHRASE=tui-ratio
python3 -c "import random; random.seed(9); open('$work/64mib.bin','wb').write(random.randbytes(64*1024*1024))"
mkdir "$work/out"
send_ms() {
  $bin send "127.0.0.1:$1" "$work/64mib.bin" --json 2>/dev/null \
    | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['duration_ms'])"
}
headless=()
$bin recv --listen 127.0.0.1:17979 --out "$work/out" >/dev/null 2>&1 &
sleep 0.3
for _ in $(seq "$runs"); do headless+=("$(send_ms 17979)"); rm -f "$work"/out/*; done
kill %1 2>/dev/null || true
tui=()
tmux -L "$sock" -f /dev/null new-session -d -x 160 -y 48 \
  "UDPIX_PASSPHRASE=$UDPIX_PASSPHRASE $bin tui --listen 127.0.0.1:17980 --out $work/out"
sleep 1
for _ in $(seq "$runs"); do tui+=("$(send_ms 17980)"); rm -f "$work"/out/*; done
python3 - "${headless[*]}" "${tui[*]}" <<'PY'
import statistics, sys
h = statistics.median(map(float, sys.argv[1].split()))
t = statistics.median(map(float, sys.argv[2].split()))
print(f"headless receiver: {h:.0f} ms (runs: {sys.argv[1]})")
print(f"TUI receiver:      {t:.0f} ms (runs: {sys.argv[2]})")
print(f"ratio TUI/headless: {t/h:.2f}")
PY
