"""How fast can plain ONNX ops run the selective scan? One layer's recurrence in onnxruntime against the fused kernel.

    python benchmarks/onnx_scan_floor.py            # serpent-t's first layer at 256x256: 128x128 map, K=4, d=48, N=8

Issue 21 asks for the exported graph within 2x of PyTorch. PyTorch runs the scan as one fused C++
kernel that keeps the state in registers; onnxruntime runs one elementwise op at a time, each a pass
over a tensor. This script times, for the same layer and one thread:

- fused: serpentir's compiled 2-D kernel (selective_scan_2d, backend "cpu"), the whole layer: step sizes,
  softplus, the four walks and the skip term included;
- export: the graph `serpentir export` writes (two Scan loops whose body does exp(d*A)*h + du*B, plus
  the read-out y = sum_n C*h in the second; the carry across chunks between them);
- bulk: the cheapest loop body possible, exp(d*A) and du*B computed before the loops as whole-map ops, so
  that each loop step is one Mul and one Add (8x the export graph's memory: not a deployable graph, a
  lower bound for any Scan formulation).

Reported as nanoseconds per state element (map positions x K x d x N), median of --repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def random_inputs(T: int, M: int, N: int, K: int, d: int, *, dt_max: float, seed: int = 0):
    """A (N, K, d) and the graphs' feeds (dt, du, B, C), seeded: the benchmark's inputs, and its test's."""
    rng = np.random.default_rng(seed)
    A = -np.exp(rng.uniform(0, 2, (N, K, d))).astype(np.float32)
    dt = rng.uniform(0.001, dt_max, (T, M, 1, 1, K, d)).astype(np.float32)
    feeds = {"dt": dt, "du": (dt * rng.standard_normal(dt.shape)).astype(np.float32),
             "B": rng.standard_normal((T, M, 1, N, K, 1)).astype(np.float32),
             "C": rng.standard_normal((T, M, 1, N, K, 1)).astype(np.float32)}
    return A, feeds


def _graphs(T: int, M: int, N: int, K: int, d: int, A: np.ndarray):
    """(export-form model, bulk-form model): inputs dt, du (T, M, 1, 1, K, d), B, C (T, M, 1, N, K, 1) -> y."""
    from onnx import TensorProto, helper, numpy_helper

    F = TensorProto.FLOAT

    def v(name: str, rank: int):
        return helper.make_tensor_value_info(name, F, [f"{name}_{i}" for i in range(rank)])

    def carry(nodes: list, inits: list) -> None:  # entry states of the M chunks, unrolled as in the first export
        nodes += [helper.make_node("ReduceSum", ["dt", "ax0"], ["dsum"], keepdims=0),
                  helper.make_node("Mul", ["dsum", "A"], ["dsa"]), helper.make_node("Exp", ["dsa"], ["decay"]),
                  helper.make_node("Split", ["end"], [f"end{m}" for m in range(M)], axis=0, num_outputs=M),
                  helper.make_node("Split", ["decay"], [f"dec{m}" for m in range(M)], axis=0, num_outputs=M),
                  helper.make_node("Slice", ["zero", "s0", "s1", "s0"], ["carry0"])]
        entries, prev = [], "carry0"
        for m in range(M):
            entries.append(prev)
            if m < M - 1:
                nodes += [helper.make_node("Mul", [f"dec{m}", prev], [f"c{m}"]),
                          helper.make_node("Add", [f"c{m}", f"end{m}"], [f"carry{m + 1}"])]
                prev = f"carry{m + 1}"
        nodes.append(helper.make_node("Concat", entries, ["entry"], axis=0))
        inits += [numpy_helper.from_array(np.array([0], np.int64), "s0"),
                  numpy_helper.from_array(np.array([1], np.int64), "s1")]

    def model(head: list, tail: list):
        """head (up to the chunk end states), the carry, then tail (the read-out pass)."""
        zero = np.zeros((M, 1, N, K, d), np.float32)
        inits = [numpy_helper.from_array(A, "A"), numpy_helper.from_array(zero, "zero"),
                 numpy_helper.from_array(np.array([2], np.int64), "ax"),
                 numpy_helper.from_array(np.array([0], np.int64), "ax0")]
        nodes = list(head)
        carry(nodes, inits)
        graph = helper.make_graph(nodes + tail, "layer", [v(n, 6) for n in ("dt", "du", "B", "C")], [v("y", 5)],
                                  initializer=inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
        m.ir_version = 9
        return m.SerializeToString()

    def body(name: str, nodes: list, ins: list, outs: list):
        return helper.make_graph(nodes, name, [v(n, r) for n, r in ins], [v(n, r) for n, r in outs])

    step = [helper.make_node("Mul", ["d_t", "A"], ["da"]), helper.make_node("Exp", ["da"], ["a"]),
            helper.make_node("Mul", ["a", "h"], ["ah"]), helper.make_node("Mul", ["du_t", "B_t"], ["x"]),
            helper.make_node("Add", ["ah", "x"], ["h2"])]
    read = [helper.make_node("Mul", ["h2", "C_t"], ["hc"]),
            helper.make_node("ReduceSum", ["hc", "ax"], ["y_t"], keepdims=0)]
    ends = body("end", step, [("h", 5), ("d_t", 5), ("du_t", 5), ("B_t", 5)], [("h2", 5)])
    reads = body("read", step + read, [("h", 5), ("d_t", 5), ("du_t", 5), ("B_t", 5), ("C_t", 5)],
                 [("h2", 5), ("y_t", 4)])
    export = model([helper.make_node("Scan", ["zero", "dt", "du", "B"], ["end"], body=ends, num_scan_inputs=3)],
                   [helper.make_node("Scan", ["entry", "dt", "du", "B", "C"], ["last", "y"], body=reads,
                                     num_scan_inputs=4)])

    lean = [helper.make_node("Mul", ["a_t", "h"], ["ah"]), helper.make_node("Add", ["ah", "x_t"], ["h2"])]
    ends = body("end", lean, [("h", 5), ("a_t", 5), ("x_t", 5)], [("h2", 5)])
    reads = body("read", lean + read, [("h", 5), ("a_t", 5), ("x_t", 5), ("C_t", 5)], [("h2", 5), ("y_t", 4)])
    bulk = model([helper.make_node("Mul", ["dt", "A"], ["da_all"]), helper.make_node("Exp", ["da_all"], ["a"]),
                  helper.make_node("Mul", ["du", "B"], ["x"]),
                  helper.make_node("Scan", ["zero", "a", "x"], ["end"], body=ends, num_scan_inputs=2)],
                 [helper.make_node("Scan", ["entry", "a", "x", "C"], ["last", "y"], body=reads, num_scan_inputs=3)])
    return export, bulk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", type=int, default=128, help="the layer's map side (128: a 256-px image, patch 2)")
    parser.add_argument("--chunks", type=int, default=32, help="chunks per walk, as serpentir export picks (32)")
    parser.add_argument("--channels", type=int, default=48)
    parser.add_argument("--state", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    import onnxruntime
    import torch

    from serpentir.ops.scan_2d import selective_scan_2d
    from serpentir.ops.scan_walks import scan_walks

    torch.set_num_threads(1)
    S, M, d, N, K, R = args.map, args.chunks, args.channels, args.state, 4, 3
    T = (S + M - 1) // M * S  # steps per chunk: a band of lines
    A, feeds = random_inputs(T, M, N, K, d, dt_max=0.2)
    elements = S * S * K * d * N

    def median_ns(run) -> float:
        run()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return statistics.median(times) / elements * 1e9

    g = torch.Generator().manual_seed(0)
    u, dtr = torch.randn(1, S, S, d, generator=g), torch.randn(1, S, S, K, R, generator=g)
    w = torch.randn(K * d, R, generator=g) * 0.3
    Bt, Ct = torch.randn(1, S, S, K, N, generator=g), torch.randn(1, S, S, K, N, generator=g)
    At = torch.from_numpy(A).permute(1, 2, 0).reshape(K * d, N)
    Dt, bias = torch.randn(K * d), torch.full((K * d,), -3.0)
    walks = scan_walks(4)
    with torch.no_grad():
        fused = median_ns(lambda: selective_scan_2d(u, dtr, w, At, Bt, Ct, Dt, bias, walks=walks, backend="cpu"))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    print(f"layer: {S}x{S} map, K={K}, d={d}, N={N}; {M} chunks of {T} steps; one thread; median of {args.repeats}")
    print(f"{'fused kernel (PyTorch)':32s} {fused:5.2f} ns per state element")
    for name, graph in zip(("export graph (onnxruntime)", "bulk lower bound (onnxruntime)"), _graphs(T, M, N, K, d, A)):
        session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        ns = median_ns(lambda: session.run(None, feeds))
        print(f"{name:32s} {ns:5.2f} ns per state element ({ns / fused:.1f}x the fused kernel)")


if __name__ == "__main__":
    main()
