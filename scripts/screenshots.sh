#!/usr/bin/env bash
# Regenerates screenshots/*.png: the real TUI in a real terminal emulator (xterm as a VT340,
# which speaks sixel) under Xvfb, captured with ImageMagick.
# Needs: apt-get install -y xvfb xterm imagemagick x11-utils xdotool (and kitty for its shot)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/udpix
data=$(cd ../shared/testdata && pwd)
work=$(mktemp -d)
export DISPLAY=:97 UDPIX_PASSPHRASE=screenshot-demo
Xvfb "$DISPLAY" -screen 0 1280x880x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 1
term() { # title, command
  xterm -ti vt340 -xrm 'XTerm*numColorRegisters: 256' -xrm 'XTerm*decTerminalID: vt340' \
    -tn xterm-256color -fa 'Monospace' -fs 10 -bg black -fg white -geometry 128x42+0+0 -T "$1" -e "$2" &
}
shot() { sleep "$2"; import -window root -crop 1290x860+0+0 "screenshots/$1.png"; echo "screenshots/$1.png"; }
# Without a window manager nothing has the keyboard: give it to the newest xterm.
focus() { xdotool windowfocus --sync "$(xdotool search --sync --onlyvisible --class xterm | tail -1)"; }

# 1. A TUI receiver with sixel preview, an image arriving through a lossy netsim link.
mkdir "$work/in"
term receive "$bin tui --listen 127.0.0.1:18788 --out $work/in --image-protocol sixel"
sleep 2
$bin netsim --listen 127.0.0.1:18789 --to 127.0.0.1:18788 --rate 8mbit --delay 20ms --loss 10% \
  --burst 3 2>/dev/null &
sleep 0.5
$bin send 127.0.0.1:18789 "$data/coffee.png" >/dev/null 2>&1 &
sender=$!
shot receive-arriving 0.6
wait "$sender" || true
shot receive-done 2.5
focus
xdotool key question
shot help 1
pkill -f "udpix tui --listen 127.0.0.1:18788" || true
sleep 0.5

# 2. A TUI sender in the half-block fallback, browsing the test images.
$bin recv --listen 127.0.0.1:18790 --out "$work/in" >/dev/null 2>&1 &
(cd "$data" && term send "$bin tui --connect 127.0.0.1:18790 --image-protocol blocks")
sleep 2
focus
for k in Tab Down Down Down Down Down; do xdotool key "$k"; sleep 0.15; done
xdotool key Return
shot send-blocks 3

# 3. A TUI receiver in kitty (graphics protocol, detected on its own), when kitty is installed.
if command -v kitty >/dev/null; then
  pkill -f "udpix tui --connect 127.0.0.1:18790" || true
  sleep 0.5
  LIBGL_ALWAYS_SOFTWARE=1 kitty --config NONE -o font_size=10 -o initial_window_width=1280 \
    -o initial_window_height=860 -o remember_window_size=no -o background=#000000 \
    -o foreground=#ffffff "$bin" tui --listen 127.0.0.1:18791 --out "$work/in" >/dev/null 2>&1 &
  sleep 4
  $bin netsim --listen 127.0.0.1:18792 --to 127.0.0.1:18791 --rate 8mbit --delay 20ms --loss 10% \
    --burst 3 2>/dev/null &
  sleep 0.5
  $bin send 127.0.0.1:18792 "$data/rocket.jpg" >/dev/null 2>&1 || true
  shot kitty-receive 2
fi
