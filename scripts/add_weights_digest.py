"""Record the tensors' SHA-256 digest in weights files written before serpentir recorded one.

    python scripts/add_weights_digest.py serpentir/weights/*.safetensors

Only the metadata gains a key; each file is rewritten atomically and its tensors are checked to be
bit-identical before and after (and the other metadata keys unchanged).
"""

import sys

import torch
from safetensors import safe_open

from serpentir.checkpoint import DIGEST_KEY, add_digest


def _read(path: str) -> tuple[dict, dict]:
    with safe_open(path, framework="pt") as f:
        return dict(f.metadata() or {}), {k: f.get_tensor(k) for k in f.keys()}


def main(paths: list[str]) -> None:
    for path in paths:
        meta_before, before = _read(path)
        digest = add_digest(path)
        meta_after, after = _read(path)
        same = before.keys() == after.keys() and all(
            b.dtype == after[k].dtype and torch.equal(b.view(-1).view(torch.uint8), after[k].view(-1).view(torch.uint8))
            for k, b in before.items())
        meta_before.pop(DIGEST_KEY, None)
        if not same or {k: v for k, v in meta_after.items() if k != DIGEST_KEY} != meta_before:
            sys.exit(f"{path}: tensors or metadata changed")
        print(f"{path}: {len(after)} tensors bit-identical, {DIGEST_KEY}={digest}")


if __name__ == "__main__":
    main(sys.argv[1:])
