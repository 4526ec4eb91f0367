#!/usr/bin/env bash
# What scripts/gpu_check.sh needs on a CUDA machine that has torch but no network (benchmarks/GPU.md, "How this run
# was made"), prepared here where PyPI is reachable:
#   bash scripts/offline_gpu_bundle.sh [PYTHON_VERSION, default 3.12] [OUT, default .offline_gpu]
# OUT/data:   the held-out photos (the node check's frames) and the demo clip's first 200 frames (re-encoded, small);
# OUT/wheels: the ROS 2 wheels of requirements-ros.txt for that Python (manylinux x86-64), no dependencies resolved.
# There, from the checkout with OUT copied in:
#   python3 -m pip install --no-index --no-deps OUT/wheels/*.whl        # into the Python that has torch
#   bash scripts/build_interfaces.sh "$(python3 -c 'import sys; print(sys.prefix)')"
#   GPU_CHECK_INSTALL=0 DYTRACK_PHOTOS=OUT/data bash scripts/gpu_check.sh --require-gpu
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYVER="${1:-3.12}"
OUT="${2:-$ROOT/.offline_gpu}"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || { echo "run scripts/setup.sh first (its venv has pip and the project)"; exit 1; }
mkdir -p "$OUT/data" "$OUT/wheels"
# the wheels the venv holds for ROS (names and versions as installed here), for the other Python
"$PY" -m pip freeze | grep -E '^(ros-|catkin-pkg|lark-parser|docutils|distlib)' > "$OUT/ros-freeze.txt"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$OUT/wheels" -r "$OUT/ros-freeze.txt"
# empy is published as a source archive only: build its (pure Python) wheel here
"$PY" -m pip wheel -q --no-deps "$("$PY" -m pip freeze | grep '^empy==')" -w "$OUT/wheels"
"$PY" - "$OUT/data" <<'PYEOF'
import os, shutil, sys
import cv2
from dytrack_ros.data.photos import data_dir, list_photos
out = sys.argv[1]
for path in list_photos("heldout"):
    shutil.copy(path, out)
cap = cv2.VideoCapture(os.path.join(data_dir(), "vtest.avi"))
ok, frame = cap.read()
writer = cv2.VideoWriter(os.path.join(out, "vtest.avi"), cv2.VideoWriter_fourcc(*"XVID"), 10,
                         (frame.shape[1], frame.shape[0]))
for _ in range(200):
    if not ok:
        break
    writer.write(frame)
    ok, frame = cap.read()
writer.release()
PYEOF
du -sh "$OUT/data" "$OUT/wheels"
