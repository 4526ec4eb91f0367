#!/usr/bin/env bash
# colcon build of a workspace against this project's venv (pip-installed ROS 2 wheels, no /opt/ros):
#   bash scripts/colcon_build.sh ~/ws      (the workspace's src/ holds this package)
#   source ~/ws/install/setup.bash
# The venv's ament/rosidl wheels are found only with AMENT_PREFIX_PATH and CMAKE_PREFIX_PATH pointing at the venv
# (else: "No 'rosidl_typesupport_c' found"), their libraries with LD_LIBRARY_PATH, and CMake must use the venv's
# Python. On a ROS install none of this is needed: `source /opt/ros/$ROS_DISTRO/setup.bash && colcon build`.
set -euo pipefail
WS="${1:?usage: colcon_build.sh WORKSPACE [extra colcon arguments]}"
shift
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VIRTUAL_ENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no venv at $VENV: run scripts/setup.sh first" >&2; exit 2; }
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
LD_LIBRARY_PATH="$("$PY" -c 'import ros_wheels_bootstrapper as r; print(r.get_ros_paths())'):${LD_LIBRARY_PATH:-}"
export LD_LIBRARY_PATH
cd "$WS"
exec colcon build --event-handlers console_cohesion+ --cmake-args "-DPython3_EXECUTABLE=$PY" -DBUILD_TESTING=OFF "$@"
