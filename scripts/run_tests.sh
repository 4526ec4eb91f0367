#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest (e.g. -m slow, -k ros).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exec "$ROOT/.venv/bin/python" -m pytest -m "not slow" "$@"
