#!/usr/bin/env bash
# A live stream through a link too slow for it: a writer puts FRAMES images of SIZE bytes
# into a folder at FPS; `udpix send --watch --deadline` sends them through `udpix netsim`
# (RATE, DELAY one way, LOSS); prints how many were delivered and how many gave way.
#   scripts/deadline-stream.sh [udpix binary]   (env: FRAMES SIZE FPS RATE DELAY LOSS DEADLINE)
set -euo pipefail
bin=${1:-target/release/udpix}
frames=${FRAMES:-50} size=${SIZE:-200000} fps=${FPS:-10}
rate=${RATE:-4mbit} delay=${DELAY:-20ms} loss=${LOSS:-10%} deadline=${DEADLINE:-500ms}
w=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$w"' EXIT
mkdir "$w/src" "$w/out"
export UDPIX_PASSPHRASE=417-orbit-lantern-mosaic
"$bin" recv --listen 127.0.0.1:0 --out "$w/out" --json >"$w/recv.json" 2>"$w/recv.err" &
until grep -q "listening on" "$w/recv.err"; do sleep 0.05; done
raddr=$(sed -n 's/.*listening on \([^,]*\),.*/\1/p' "$w/recv.err")
"$bin" netsim --listen 127.0.0.1:0 --to "$raddr" --rate "$rate" --delay "$delay" \
  --loss "$loss" --seed 3 >/dev/null 2>"$w/netsim.err" &
until grep -q "udpix netsim:" "$w/netsim.err"; do sleep 0.05; done
via=$(sed -n 's/^udpix netsim: \([^ ]*\) .*/\1/p' "$w/netsim.err" | head -1)
"$bin" send "$via" "$w/src" --watch --settle 30ms --deadline "$deadline" --json \
  >"$w/send.json" 2>"$w/send.err" &
sender=$!
until grep -q "watching" "$w/send.err"; do sleep 0.05; done
python3 - "$w/src" "$frames" "$size" "$fps" <<'PY'
import os, random, sys, time
src, frames, size, fps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
random.seed(5)
start = time.monotonic()
for i in range(frames):
    tmp = os.path.join(src, f".f{i:03}.tmp")
    with open(tmp, "wb") as f:
        f.write(random.randbytes(size))
    os.rename(tmp, os.path.join(src, f"frame{i:03}.png"))
    time.sleep(max(0, start + (i + 1) / fps - time.monotonic()))
PY
# Every frame ends (the newest is always delivered: nothing newer comes): wait for all.
until [ "$(grep -c '^{' "$w/send.json")" -ge "$frames" ]; do sleep 0.05; done
kill -INT $sender; wait $sender || true
echo "receiver kept $(ls "$w/out" | wc -l)"
python3 - "$w/send.json" ${VERBOSE:+v} <<'PY'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ok = [j for j in s if j["ok"]]
begun = [j for j in s if not j["ok"] and j["datagrams_sent"] > 0]
print(f"{len(s)} frames: {len(ok)} delivered, {len(s) - len(ok)} gave way "
      f"({len(begun)} of them after some of it was sent)")
print("delivered:", " ".join(j["name"][5:8] for j in ok))
if len(sys.argv) > 2:
    for j in s:
        print(j["name"], j["ok"], j["duration_ms"], j["datagrams_sent"])
PY
