#!/usr/bin/env bash
# The wheel carries a compiled scan that loads without a compiler: build the wheel here, install it
# into a fresh venv (torch==2.13.0 first, so nothing resolves a bare torch), hide every compiler, and
# restore a photo; `-v` must say the scan kernel is the shipped binary. Prints timings.
#   scripts/check_wheel.sh [WORK_DIR]      (WORK_DIR defaults to a new temporary folder)
# Set WHEEL=path/to.whl to skip the build and check an existing wheel.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
python="${PYTHON:-python3}"
stamp() { date +%s; }

if [ -z "${WHEEL:-}" ]; then
    t0=$(stamp)
    # from a copy of the working tree without build outputs, so nothing compiled earlier is reused
    rm -rf "$work/src" && mkdir -p "$work/src"
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src")
    (cd "$work/src" && MAX_JOBS="${MAX_JOBS:-1}" "$python" -m pip wheel . --no-build-isolation --no-deps -w "$work/dist" -q)
    echo "wheel built in $(( $(stamp) - t0 )) s"
    WHEEL="$(ls -t "$work"/dist/serpentir-*.whl | head -1)"
fi
echo "wheel: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
"$python" -m zipfile -l "$WHEEL" | grep -E "_scan_kernel|_scan_kernels.json" | awk '{print "  " $1}'

t0=$(stamp)
rm -rf "$work/venv"
"$python" -m venv "$work/venv"
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
quiet "$work/venv/bin/pip" install -q torch==2.13.0
quiet "$work/venv/bin/pip" install -q "$WHEEL"
echo "fresh venv with torch and the wheel in $(( $(stamp) - t0 )) s"

# no compiler: PATH holds only the venv's bin and a folder with the few tools the shell needs
tools="$work/tools"
mkdir -p "$tools"
for t in env mkdir ls; do ln -sf "$(command -v $t)" "$tools/$t"; done
run_clean() {
    env -i HOME="$work/home" PATH="$work/venv/bin:$tools" CC=/bin/false CXX=/bin/false \
        SERPENTIR_KERNEL_CACHE="$work/kernel-cache" TORCH_EXTENSIONS_DIR="$work/torch-extensions" \
        OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$@"
}
for cc in c++ g++ gcc cc clang; do
    if run_clean "$work/venv/bin/python" -c "import shutil, sys; sys.exit(shutil.which('$cc') is None)"; then
        echo "FAIL: $cc is on the clean PATH"; exit 1
    fi
done
echo "no compiler on PATH (c++, g++, gcc, cc, clang all missing; CC=CXX=/bin/false)"
# the control: a build on first use really is impossible in this environment
if run_clean env -u CC -u CXX SERPENTIR_KERNEL_CACHE="$work/control-cache" "$work/venv/bin/python" -c \
    "import serpentir.ops.scan_cpu_build as b; b.build_and_load()" > "$work/control.log" 2>&1; then
    echo "FAIL: the kernel could be built here, so this check would prove nothing"; exit 1
fi
echo "control: a first-use build fails here: $(grep -m1 "not found" "$work/control.log" || tail -1 "$work/control.log")"

cd "$work"
run_clean "$work/venv/bin/python" -c "import skimage.data, PIL.Image; PIL.Image.fromarray(skimage.data.chelsea()).save('$work/chelsea.png')"
t0=$(stamp)
run_clean "$work/venv/bin/serpentir" -v restore "$work/chelsea.png" -o "$work/chelsea_restored.png" 2>&1 | tee "$work/restore.log"
echo "restore took $(( $(stamp) - t0 )) s (process start, model load and the 300x451 photo)"
grep -q "scan kernel: shipped binary $work/venv/" "$work/restore.log" || { echo "FAIL: the shipped binary was not used"; exit 1; }
grep -q "using the 'cpu' backend" "$work/restore.log" || { echo "FAIL: the compiled backend was not used"; exit 1; }
[ ! -e "$work/kernel-cache" ] || { echo "FAIL: something was built on first use"; exit 1; }
run_clean "$work/venv/bin/python" -c "from PIL import Image; im = Image.open('$work/chelsea_restored.png'); print('restored:', im.size, im.mode)"
echo "OK: restored with the shipped compiled kernel, no compiler on PATH"
