#!/usr/bin/env bash
# Build msg/ (TrackedTarget, TargetBox) with the rosidl/ament wheels from PyPI and install them into the venv.
# On a real ROS 2 install use `colcon build` instead (docs/colcon.md). Usage: scripts/build_interfaces.sh [VENV]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
PY="$VENV/bin/python"
PYINC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
NPINC="$("$PY" -c 'import numpy; print(numpy.get_include())')"
# The wheels' exported CMake targets name include dirs of the machine that built them: point them at ours.
grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$VENV/share" --include='*.cmake' 2>/dev/null | while read -r f; do
  sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${PYINC}#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/[^;\"]*numpy/_core/include#${NPINC}#g" "$f"
done || true
BUILD="$ROOT/build/interfaces"
mkdir -p "$BUILD"
export AMENT_PREFIX_PATH="$VENV"
export LD_LIBRARY_PATH="$("$PY" -c 'import ros_wheels_bootstrapper as r; print(r.get_ros_paths())'):${LD_LIBRARY_PATH:-}"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DPython3_EXECUTABLE="$PY" -DDYTRACK_INTERFACES_ONLY=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > "$BUILD/configure.log" 2>&1 \
  || { tail -40 "$BUILD/configure.log"; exit 1; }
make -C "$BUILD" -j"$(nproc)" install > "$BUILD/build.log" 2>&1 || { tail -40 "$BUILD/build.log"; exit 1; }
"$PY" - <<'PYEOF'
from dytrack_ros.msg import TrackedTarget, TargetBox
print("built messages:", TrackedTarget.__name__, TargetBox.__name__)
PYEOF
