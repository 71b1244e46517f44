import os

import pytest
import torch

# The compiled CPU scan takes 50-90 s to build on a fresh machine. Only tests/test_scan_cpu.py builds
# it (once, it re-enables the kernel for itself); everywhere else 'auto' resolves to 'chunked'.
# Set SERPENTIR_DISABLE_CPU_KERNEL=0 to run the whole suite on the compiled kernel.
os.environ.setdefault("SERPENTIR_DISABLE_CPU_KERNEL", "1")


@pytest.fixture(scope="module")
def compiled_kernel():
    """Enable and build the compiled CPU scans for one test module; a machine that cannot build them fails, loudly."""
    import serpentir.ops.scan_core as scan_core

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(scan_core.DISABLE_ENV, raising=False)
        mp.delenv("SERPENTIR_SCAN_BACKEND", raising=False)
        if scan_core.cpu_kernel_ops() is None:
            pytest.fail(f"the compiled CPU scan failed to build: {scan_core.cpu_kernel_error()}")
        yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One torch thread for the test: small models run faster than with two contending threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
