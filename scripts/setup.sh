#!/usr/bin/env bash
# Set up everything on a fresh Debian machine with Python 3.11: venv, Python packages (incl. ROS 2 wheels),
# our messages (msg/ built with rosidl), the example data. Idempotent: steps already done are skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
# cmake/g++: building msg/ and the colcon test; chromium + its driver: the browser test of the target picker
if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null || ! command -v chromium >/dev/null || \
   ! command -v chromedriver >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq cmake g++ make chromium chromium-driver) >/dev/null
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
STAMP="$VENV/.dytrack-installed"
REQ_HASH="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-ros.txt" "$ROOT/setup.py" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$REQ_HASH" ]; then
  LOG="$VENV/pip-install.log"
  echo "installing Python packages (log: $LOG) ..."
  { "$VENV/bin/python" -m pip install -q --upgrade pip &&
    "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt" -r "$ROOT/requirements-ros.txt" &&
    "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT"; } > "$LOG" 2>&1 || { tail -30 "$LOG"; exit 1; }
  echo "$REQ_HASH" > "$STAMP"
fi
MSG_STAMP="$VENV/.dytrack-msgs"
MSG_HASH="$(cat "$ROOT"/msg/*.msg "$ROOT"/srv/*.srv "$ROOT/CMakeLists.txt" "$ROOT/package.xml" | sha256sum | cut -c1-16)"
if [ "$(cat "$MSG_STAMP" 2>/dev/null)" != "$MSG_HASH" ] || \
   ! (cd /tmp && "$VENV/bin/python" -c "import sys; sys.path.insert(0, '$ROOT'); from dytrack_ros.msg import TrackedTarget" 2>/dev/null); then
  bash "$ROOT/scripts/build_interfaces.sh" "$VENV"
  echo "$MSG_HASH" > "$MSG_STAMP"
fi
bash "$ROOT/scripts/fetch_data.sh"
echo "set-up complete: $VENV"
