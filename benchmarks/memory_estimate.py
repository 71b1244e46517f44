"""How well the restore memory guard predicts a whole-image forward's peak memory.

    python benchmarks/memory_estimate.py [--task gaussian_deblur] [--sizes 256,512,768]

The guard's calibration (two small runs, 64 and 128 pixels, fitted linearly in pixels) is compared
with the peak measured in a fresh process per size (resident-set high-water mark above the idle
process after a 32-pixel warm-up), which is what the guard must not underestimate.
"""

import argparse
import json
import subprocess
import sys


def measure(task: str, side: int) -> int:
    code = f"""
import json, torch, serpentir
from serpentir.infer import process_status_bytes, reset_peak_rss
m = serpentir.load_model({task!r})
with torch.no_grad():
    m(torch.rand(1, 3, 32, 32))
    reset_peak_rss(); base = process_status_bytes("VmRSS")
    m(torch.rand(1, 3, {side}, {side}))
print(json.dumps(process_status_bytes("VmHWM") - base))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="gaussian_deblur")
    parser.add_argument("--sizes", default="256,512,768")
    args = parser.parse_args()
    import serpentir
    from serpentir.infer.memory import SAFETY, peak_model

    fit = peak_model(serpentir.load_model(args.task), 3)
    for name, line in (("whole map", fit.whole), ("in pieces", fit.in_pieces)):
        print(f"calibration, {name}: {line.intercept / 2**20:.1f} MB + {line.per_pixel:.0f} B/pixel")
    print(f"pieces from {fit.pieces_from:.0f} pixels; the guard adds x{SAFETY}")
    print(f"{'size':>6} {'fit MB':>8} {'guard MB':>9} {'measured MB':>12} {'guard/measured':>15}")
    for side in (int(s) for s in args.sizes.split(",")):
        fitted = fit.bytes_for(side * side) / SAFETY
        real = measure(args.task, side)
        print(f"{side:>6} {fitted / 2**20:>8.0f} {fit.bytes_for(side * side) / 2**20:>9.0f} {real / 2**20:>12.0f} "
              f"{fit.bytes_for(side * side) / real:>15.2f}")


if __name__ == "__main__":
    main()
