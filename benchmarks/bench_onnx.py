"""onnxruntime's latency for an exported bundled model beside PyTorch's, in the same process, on this CPU.

    python benchmarks/bench_onnx.py                                   # gaussian_deblur, 256 and 512, 1 thread
    python benchmarks/bench_onnx.py --task denoise --threads 1 2      # one table per thread count
    python benchmarks/bench_onnx.py --onnx deblur.onnx                # reuse an exported file

PyTorch runs the model as `restore` does (the default backend: the fused 2-D CPU scan kernel). Inputs
are a real photo (skimage's astronaut) resized to each size and degraded by the task. Each figure is
the median of --repeats rounds after one warm-up call; a round times PyTorch and onnxruntime one after
the other, so both see the same machine load; the ratio is onnxruntime / PyTorch. Both runtimes use
the same thread count. Parity is max |onnxruntime - PyTorch| on crops of the photo at --check sizes
(odd ones included). The export time is wall time and this process's CPU time (the machine may be
shared: expect noise in every figure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def photo(size: tuple[int, int], task) -> torch.Tensor:
    from skimage import data as skdata
    from skimage.transform import resize

    clean = resize(skdata.astronaut(), size, anti_aliasing=True).astype(np.float32)
    return task(torch.from_numpy(clean).permute(2, 0, 1), seed=0)[None].float()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    return int(h), int(w or h)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="gaussian_deblur")
    parser.add_argument("--onnx", help="an exported file of the task's bundled model (default: export one now)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--check", type=parse_size, nargs="+", default=[(37, 53), (256, 256), (300, 200)],
                        metavar="HxW", help="sizes of the parity check")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    args = parser.parse_args(argv)

    import onnxruntime

    from serpentir.checkpoint import load_checkpoint
    from serpentir.export.onnx import export_onnx
    from serpentir.infer import bundled_weights

    model, task, _ = load_checkpoint(bundled_weights(args.task))
    path = Path(args.onnx) if args.onnx else Path(tempfile.mkdtemp()) / f"{args.task}.onnx"
    if not args.onnx:
        torch.set_num_threads(1)
        wall, cpu = time.perf_counter(), time.process_time()
        export_onnx(path, task=args.task)
        print(f"export (with its parity check): {time.perf_counter() - wall:.0f} s wall, "
              f"{time.process_time() - cpu:.0f} s CPU", flush=True)
    print(f"task {args.task}, median of {args.repeats} rounds, onnxruntime {onnxruntime.__version__}, "
          f"torch {torch.__version__}", flush=True)
    for threads in args.threads:
        torch.set_num_threads(threads)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def ort(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {"image": x.numpy()})[0])

        def pt(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model(x).clamp(0, 1)

        print(f"\n{threads} thread(s)\n")
        print("| size | PyTorch (fused scan) | onnxruntime | ratio (median, range over rounds) | max abs diff |")
        print("|---|---|---|---|---|")
        for size in args.sizes:
            x = photo((size, size), task)
            diff = float((ort(x) - pt(x)).abs().max())  # also the warm-up call of both
            rounds = [(timed(lambda: pt(x)), timed(lambda: ort(x))) for _ in range(args.repeats)]
            t_pt = statistics.median(r[0] for r in rounds)
            t_ort = statistics.median(r[1] for r in rounds)
            ratios = sorted(r[1] / r[0] for r in rounds)
            print(f"| {size}x{size} | {t_pt * 1e3:.0f} ms | {t_ort * 1e3:.0f} ms | {statistics.median(ratios):.2f} "
                  f"({ratios[0]:.2f}-{ratios[-1]:.2f}) | {diff:.1e} |", flush=True)
    print("\n| parity size | max abs diff |")
    print("|---|---|")
    for h, w in args.check:
        x = photo((h, w), task)
        print(f"| {h}x{w} | {float((ort(x) - pt(x)).abs().max()):.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
