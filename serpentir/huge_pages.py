"""Transparent huge pages for torch's CPU allocator: an explicit opt-in, which the command line makes.

torch reads THP_MEM_ALLOC_ENABLE once, at its first CPU allocation, and from then on asks the kernel
for huge pages (madvise) on every allocation of 2 MB or more, so fresh large tensors take far fewer
page faults. serpent-t on a 512x512 image, steady state, one thread, the compiled scan: 399 ms of
CPU time with it against 418 ms without (median of 7 fresh processes each,
`python benchmarks/thp_inference.py --procs 7`); the chunked scan gained 2-3x in an earlier
measurement. Importing serpentir changes nothing: a library must not set variables that every
child process inherits.
"""

from __future__ import annotations

import os

THP_ENV = "THP_MEM_ALLOC_ENABLE"


def enable_huge_pages() -> None:
    """Have torch back large CPU tensors with transparent huge pages, leaving os.environ as it was.

    Call it at the start of a program, before the first CPU tensor exists: torch reads the setting at
    its first allocation only, so a later call has no effect. A THP_MEM_ALLOC_ENABLE that the user set
    (0 to opt out) is left to decide.
    """
    if THP_ENV in os.environ:
        return
    import torch

    os.environ[THP_ENV] = "1"
    try:
        torch.empty(1)  # torch's first CPU allocation reads the variable, once for the process
    finally:
        del os.environ[THP_ENV]  # child processes do not inherit it
