"""Random number generator states: captured into checkpoints, restored on resume, forked per sample.

Exact resumption needs every generator a run draws from (Python, NumPy, torch CPU and CUDA) to be
where it was at the checkpoint. States are stored as tensors and plain Python values so that the
checkpoint loads with torch.load(weights_only=True).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def capture_rng_state() -> dict:
    """Every global generator's state, in a form torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put every global generator back where `capture_rng_state` found it."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integers (seed, epoch, index, ...): nearby keys give unrelated streams."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0] >> np.uint64(1))


@contextlib.contextmanager
def seeded_fork(seed: int) -> Iterator[None]:
    """Run a block with the Python, NumPy and torch CPU generators seeded, then put them back.

    Whatever a dataset draws from the global generators then depends only on `seed`, not on which
    process (main or DataLoader worker) runs it or on what ran before: the data order and the crops
    are a function of (seed, epoch, index), which is what makes resuming exact.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
