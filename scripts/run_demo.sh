#!/usr/bin/env bash
# The main job: set up, start the tracker node (a plain process with config/tracker.yaml) and play Debian's
# vtest.avi (a real street video, 768x576 at 10 fps) as a camera topic with an init box on a walking person.
# Prints every frame's box, exit stage, score and latency; writes out/demo_tracked.mp4.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE="$ROOT/config/fastdds_large_data.xml"   # camera-sized frames over SHM
PY="$ROOT/.venv/bin/python"
VIDEO="$ROOT/.data/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi"
mkdir -p "$ROOT/out"
"$PY" -m dytrack_ros.ros.node --ros-args --params-file config/tracker.yaml "$@" > "$ROOT/out/node.log" 2>&1 &
NODE=$!
trap 'kill -INT $NODE 2>/dev/null; wait $NODE 2>/dev/null || true' EXIT
"$PY" -m dytrack_ros.ros.play_video --video "$VIDEO" --init-box 638 238 48 86 --print-results \
  --output "$ROOT/out/demo_tracked.mp4" ${DEMO_MAX_FRAMES:+--max-frames $DEMO_MAX_FRAMES}
echo "node log: out/node.log"
