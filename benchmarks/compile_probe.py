"""Does torch.compile speed up a training step? Eager and compiled steps of one model, alternated in one process.

    python benchmarks/compile_probe.py --model serpent-t --threads 1 --pairs 6

The fused scan runs as an opaque custom op inside the compiled graph (serpentir/ops/scan_2d_cpu.py),
so what inductor can speed up is everything around it. Alternating the two steps makes the ratio
robust to other jobs on the machine; the compile time (first compiled step) is printed separately.
"""

import argparse
import statistics
import time

import torch

from serpentir.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="serpent-t")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pairs", type=int, default=6, help="timed eager/compiled step pairs after warm-up")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model)
    x, y = torch.rand(2, args.batch, 3, args.size, args.size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(net) -> float:
        started = time.perf_counter()
        loss = (net(x) - y).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - started

    step(model)
    step(model)
    compiled = torch.compile(model, dynamic=False)
    print(f"compile and first compiled step: {step(compiled):.1f} s", flush=True)
    step(compiled)
    eager, fast = [], []
    for _ in range(args.pairs):
        eager.append(step(model))
        fast.append(step(compiled))
    print("eager step ms:   ", [round(1000 * t) for t in eager])
    print("compiled step ms:", [round(1000 * t) for t in fast])
    print(f"compiled / eager time, median of {args.pairs} pairs: {statistics.median(f / e for e, f in zip(eager, fast)):.2f}")


if __name__ == "__main__":
    main()
