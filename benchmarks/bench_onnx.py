"""onnxruntime's latency for an exported bundled model beside PyTorch's, on this CPU.

    python benchmarks/bench_onnx.py                                  # gaussian_deblur, 256 and 512
    python benchmarks/bench_onnx.py --onnx deblur.onnx --threads 2   # reuse an exported file

PyTorch runs the same weights twice: with the fused 2-D CPU scan kernel ("cpu", what `restore` uses)
and with the pure-PyTorch chunked scan ("chunked"). Inputs are a real photo (skimage's astronaut) resized
to each size and degraded by the task. Each figure is the median wall time of --repeats calls after
one warm-up call, on --threads threads for both runtimes. The machine may be shared: expect noise.
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


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: builds, caches, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def photo(size: int, task) -> torch.Tensor:
    from skimage import data as skdata
    from skimage.transform import resize

    clean = resize(skdata.astronaut(), (size, size), anti_aliasing=True).astype(np.float32)
    return task(torch.from_numpy(clean).permute(2, 0, 1), seed=0)[None].float()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="gaussian_deblur")
    parser.add_argument("--onnx", help="an exported file of the task's bundled model (default: export one now)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import onnxruntime

    from serpentir.checkpoint import load_checkpoint
    from serpentir.export.onnx import export_onnx
    from serpentir.infer import bundled_weights
    from serpentir.ops.scan_export import EXPORT_CHUNK

    torch.set_num_threads(args.threads)
    model, task, _ = load_checkpoint(bundled_weights(args.task))
    path = Path(args.onnx) if args.onnx else Path(tempfile.mkdtemp()) / f"{args.task}.onnx"
    if not args.onnx:
        start = time.perf_counter()
        export_onnx(path, task=args.task)
        print(f"exported {path} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def set_backend(name: str) -> None:
        for m in model.modules():
            if hasattr(m, "scan_backend"):
                m.scan_backend = name

    print(f"task {args.task}, {args.threads} thread(s), median of {args.repeats}, export chunk {EXPORT_CHUNK}, "
          f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}\n")
    print("| size | onnxruntime | PyTorch, fused 2-D cpu scan | PyTorch, chunked scan | max abs diff |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        x = photo(size, task)
        ort_s = median_seconds(lambda: session.run(None, {"image": x.numpy()}), args.repeats)
        times = {}
        for backend in ("cpu", "chunked"):
            set_backend(backend)
            with torch.no_grad():
                times[backend] = median_seconds(lambda: model(x).clamp(0, 1), args.repeats)
        set_backend("auto")
        with torch.no_grad():
            diff = (torch.from_numpy(session.run(None, {"image": x.numpy()})[0]) - model(x).clamp(0, 1)).abs().max()
        print(f"| {size}x{size} | {ort_s:.2f} s | {times['cpu']:.2f} s | {times['chunked']:.2f} s | {diff:.1e} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
