#!/usr/bin/env bash
# Measures how long a sender takes from its first datagram to its first DATA datagram on a
# 40 ms round trip (`udpix netsim --delay 20ms`): the login's cost before any image byte
# moves. A relay in front of netsim timestamps what the sender sends (the packet type is
# byte 1 of every datagram, in clear even when sealed).
# Usage: scripts/first-data.sh [runs] [udpix binary]   (default: 5, a fresh release build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
bin=${2:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/udpix
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export UDPIX_PASSPHRASE=first-data
head -c 300000 /dev/urandom > "$work/img.bin"
mkdir "$work/out"
"$bin" recv --listen 127.0.0.1:17979 --out "$work/out" >/dev/null 2>&1 &
"$bin" netsim --listen 127.0.0.1:19090 --to 127.0.0.1:17979 --delay 20ms >/dev/null 2>&1 &
python3 - "$work/relay.log" <<'PY' &
import socket, sys, time
log = open(sys.argv[1], "a", buffering=1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 19191))
net = ("127.0.0.1", 19090)
client = None
first = None
seen_data = False
while True:
    d, a = s.recvfrom(65536)
    now = time.monotonic()
    if a != net:
        if a != client:
            client, first, seen_data = a, now, False
        if len(d) > 1 and d[1] == 0x04 and not seen_data:
            seen_data = True
            log.write(f"{(now - first) * 1000:.1f}\n")
        s.sendto(d, net)
    elif client:
        s.sendto(d, client)
PY
sleep 0.5
for _ in $(seq "$runs"); do
  "$bin" send 127.0.0.1:19191 "$work/img.bin" >/dev/null 2>&1
  rm -f "$work"/out/*
done
python3 - "$work/relay.log" <<'PY'
import statistics, sys
t = [float(x) for x in open(sys.argv[1])]
print(f"first datagram to first DATA over a 40 ms RTT: median {statistics.median(t):.1f} ms "
      f"(runs: {', '.join(f'{x:.1f}' for x in t)})")
PY
