#!/usr/bin/env bash
# Run tests/test_spandrel.py where spandrel can be imported: a throwaway venv with PyPI's torch and
# torchvision (a CUDA build, which also runs on a CPU), spandrel, and this checkout installed on top
# without letting pip replace torch. Needed because no torchvision on the registries loads with the
# CPU-only torch wheel of the main environment ("operator torchvision::nms does not exist").
#
#   scripts/spandrel_venv.sh            # venv in /tmp/spandrel-venv (reused if it is there)
#   SPANDREL_VENV=/path FRESH=1 scripts/spandrel_venv.sh
#
# The compiled CPU scan is enabled (the path a user gets) and built on first use into the venv's own
# folder, so it never rebuilds over another install's kernel. Nothing outside the venv is changed
# except the checkout's serpentir.egg-info (git-ignored), written by the editable install.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${SPANDREL_VENV:-/tmp/spandrel-venv}
TORCH=${TORCH_SPEC:-torch==2.14.1}
TORCHVISION=${TORCHVISION_SPEC:-torchvision==0.29.1}
PY=${PYTHON:-python3}

if [[ -n "${FRESH:-}" ]]; then rm -rf "$VENV"; fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)

echo "== torch and torchvision first, as a ComfyUI / chaiNNer environment has them"
"${pip[@]}" install "$TORCH" "$TORCHVISION"
# what is installed now is pinned for every later install: pip fails instead of swapping torch
"$VENV/bin/python" -m pip freeze | grep -iE '^(torch|torchvision)==' > "$VENV/keep-torch.txt"
echo "== serpentir[spandrel] on top, torch pinned to: $(tr '\n' ' ' < "$VENV/keep-torch.txt")"
"${pip[@]}" install -c "$VENV/keep-torch.txt" -e "$ROOT[spandrel]" pytest
"$VENV/bin/python" - <<'PY'
import torch, torchvision, spandrel, serpentir
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, spandrel {spandrel.__version__}, "
      f"serpentir {serpentir.__version__} from {serpentir.__file__}")
PY

echo "== tests/test_spandrel.py"
cd "$ROOT"
SERPENTIR_DISABLE_CPU_KERNEL=0 TORCH_EXTENSIONS_DIR="$VENV/torch_extensions" \
    "$VENV/bin/python" -m pytest tests/test_spandrel.py -rs -p no:cacheprovider "$@"
