#!/usr/bin/env bash
# Does the TUI slow a transfer down? A 64 MiB image (a PNG of random pixels, so the TUI also
# decodes a preview of it while the engine runs) over loopback, `runs` times each:
#   receive: sent headless to a headless receiver, then to a TUI receiver (timed by the sender)
#   send:    sent by a headless sender, then by a TUI sender (timed by the receiver)
# Each TUI runs in a tmux pane of 160x48, drawing as it would for a user. Prints the medians
# and the TUI/headless ratios. Usage: scripts/tui-ratio.sh [runs]   (needs tmux, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release --quiet
bin=$PWD/target/release/udpix
work=$(mktemp -d)
sock="udpix-ratio-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export UDPIX_PASSPHRASE=tui-ratio
python3 - "$work/64mib.png" <<'PY'
import random, struct, sys, zlib
random.seed(9)
w = h = 4729  # 4729 rows of 1 + 4729*3 bytes: 64 MiB
raw = b"".join(b"\0" + random.randbytes(w * 3) for _ in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
with open(sys.argv[1], "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
PY
mkdir "$work/out"
ms() { python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['duration_ms'])"; }
send_ms() { $bin send "127.0.0.1:$1" "$work/64mib.png" --json 2>/dev/null | ms; }

# Receive direction: the sender's time.
recv_headless=() recv_tui=()
$bin recv --listen 127.0.0.1:17979 --out "$work/out" >/dev/null 2>&1 &
sleep 0.3
for _ in $(seq "$runs"); do recv_headless+=("$(send_ms 17979)"); rm -f "$work"/out/*; done
kill %1 2>/dev/null || true
tmux -L "$sock" -f /dev/null new-session -d -x 160 -y 48 \
  "UDPIX_PASSPHRASE=$UDPIX_PASSPHRASE $bin tui --listen 127.0.0.1:17980 --out $work/out"
sleep 1
for _ in $(seq "$runs"); do recv_tui+=("$(send_ms 17980)"); rm -f "$work"/out/*; done
tmux -L "$sock" kill-server

# Send direction: the receiver's time (first datagram of the offer to the verdict).
send_headless=() send_tui=()
for _ in $(seq "$runs"); do
  $bin recv --listen 127.0.0.1:17981 --out "$work/out" --once --json 2>/dev/null > "$work/r.json" &
  sleep 0.3
  $bin send 127.0.0.1:17981 "$work/64mib.png" >/dev/null 2>&1
  wait %%; send_headless+=("$(ms < "$work/r.json")"); rm -f "$work"/out/*
done
# The TUI browses $work: `..`, `out/`, then 64mib.png; Tab focuses Files, Enter sends.
tmux -L "$sock" -f /dev/null new-session -d -x 160 -y 48 -c "$work" \
  "UDPIX_PASSPHRASE=$UDPIX_PASSPHRASE $bin tui --connect 127.0.0.1:17981"
sleep 1
tmux -L "$sock" send-keys Tab Down Down
for _ in $(seq "$runs"); do
  $bin recv --listen 127.0.0.1:17981 --out "$work/out" --once --json 2>/dev/null > "$work/r.json" &
  sleep 0.3
  tmux -L "$sock" send-keys Enter
  wait %%; send_tui+=("$(ms < "$work/r.json")"); rm -f "$work"/out/*
done

python3 - "${recv_headless[*]}" "${recv_tui[*]}" "${send_headless[*]}" "${send_tui[*]}" <<'PY'
import statistics, sys
def med(s): return statistics.median(map(float, s.split()))
rh, rt, sh, st = (med(a) for a in sys.argv[1:5])
print(f"TUI receiver: headless {rh:.0f} ms ({sys.argv[1]}), TUI {rt:.0f} ms ({sys.argv[2]}): ratio {rt/rh:.2f}")
print(f"TUI sender:   headless {sh:.0f} ms ({sys.argv[3]}), TUI {st:.0f} ms ({sys.argv[4]}): ratio {st/sh:.2f}")
PY
