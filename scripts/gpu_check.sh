#!/usr/bin/env bash
# The GPU path in one command, from a clean checkout on a CUDA machine (issue: "The GPU path the card promises"):
#   bash scripts/gpu_check.sh [--require-gpu] [any option of python -m dytrack_ros.evaluation.gpu_check]
# 1. installs what the GPU path needs where pip can reach PyPI: TensorRT for the CUDA of the machine's torch
#    (tensorrt-cu12 / tensorrt-cu13), onnxruntime, opencv, pyyaml (a machine without network keeps what it has;
#    what is missing becomes a SKIP line with the reason, never a number);
#    (GPU_CHECK_INSTALL=0 skips this step: a machine that cannot reach PyPI, where pip would only time out);
# 2. fetches the demo video if absent (DYTRACK_PHOTOS names another folder holding vtest.avi and the photos),
#    then runs the checks and writes benchmarks/GPU.md.
# Exit status: 0 all checks passed or skipped, 1 a check failed, 2 no CUDA GPU with --require-gpu.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi
CUDA_MAJOR="$("$PY" -c 'import torch; print((torch.version.cuda or "").split(".")[0])' 2>/dev/null || true)"
WANT=(onnxruntime opencv-python-headless pyyaml tqdm)
[ -n "$CUDA_MAJOR" ] && WANT+=("tensorrt-cu${CUDA_MAJOR}")
echo "gpu_check: python $PY, torch CUDA ${CUDA_MAJOR:-none}; installing where missing: ${WANT[*]}"
[ "${GPU_CHECK_INSTALL:-1}" = 0 ] && WANT=()
for pkg in "${WANT[@]}"; do
  mod="${pkg%%-cu*}"; mod="${mod/opencv-python-headless/cv2}"; mod="${mod/pyyaml/yaml}"
  "$PY" -c "import $mod" 2>/dev/null && continue
  timeout 300 "$PY" -m pip install -q --retries 1 --timeout 15 "$pkg" >/tmp/gpu_check_pip.log 2>&1 \
    && echo "  installed $pkg" || echo "  could not install $pkg (no network or no wheel): its checks will say SKIP"
done
[ -f "${DYTRACK_PHOTOS:-.data/opencv-doc/usr/share/doc/opencv-doc/examples/data}/vtest.avi" ] || bash scripts/fetch_data.sh || true
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m dytrack_ros.evaluation.gpu_check "$@"
