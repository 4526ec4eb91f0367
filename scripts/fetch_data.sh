#!/usr/bin/env bash
# Real photos and videos from Debian's opencv-doc package (no ground truth; we generate sequences from the
# photos, and vtest.avi is the demo video). Unpacked into .data/opencv-doc. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/.data/opencv-doc"
DATA="$DEST/usr/share/doc/opencv-doc/examples/data"
if [ -f "$DATA/vtest.avi" ] && [ -f "$DATA/baboon.jpg" ]; then exit 0; fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
if ! apt-get download opencv-doc >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get download opencv-doc >/dev/null
fi
mkdir -p "$DEST"
dpkg -x opencv-doc_*.deb "$DEST"
test -f "$DATA/vtest.avi"
echo "opencv-doc photos and videos in $DATA"
