"""Which nodes take onnxruntime's time in an exported graph: one profiled call, node time by op type.

    serpentir export --onnx /tmp/deblur.onnx --task gaussian_deblur
    python benchmarks/profile_onnx.py /tmp/deblur.onnx --size 256

Node times come from onnxruntime's profiler (SessionOptions.enable_profiling). A Scan node's time
includes the nodes of its body, which are also counted under their own op types, so the shares add up
to more than 100%. One thread unless --threads says otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", help="an exported .onnx file")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)

    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    options.enable_profiling = True
    options.profile_file_prefix = tempfile.mkdtemp() + "/ort"
    session = onnxruntime.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    session.run(None, {"image": x})  # warm-up
    start = time.perf_counter()
    session.run(None, {"image": x})
    print(f"{args.size}x{args.size}: {time.perf_counter() - start:.2f} s (profiled)")
    events = json.load(open(session.end_profiling()))
    last_run = [e for e in events if e.get("name") == "model_run"][-1]
    by_type, calls = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= last_run["ts"]:
            by_type[e["args"]["op_name"]] += e["dur"]
            calls[e["args"]["op_name"]] += 1
    total = last_run["dur"]
    for op, us in by_type.most_common(args.top):
        print(f"  {op:20s} {us / 1e3:9.1f} ms {100 * us / total:5.1f}%  calls {calls[op]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
