"""Suite-wide fixtures: the scan backend users get, no network, a fixed seed.

The compiled CPU scan is what `auto` gives users, so the suite runs it wherever a user would: it is
built once per machine before the first test (50-90 s with a C++ compiler, then torch's extension
cache). Tests of the pure-PyTorch path name it (backend="chunked", or the `chunked_backend`
fixture). `compiled_kernel` makes a module fail loudly where the kernel cannot be built (elsewhere
`auto` would fall back to the chunked scan with one warning, as it does for users).

No test may reach the network: an audit hook refuses every socket connection and name lookup that
is not for this machine, and a `pip install`/`pip download` started from a test.

`loaded_script(path)` imports a script of benchmarks/ or scripts/ (outside the package) for its tests.
"""

import importlib.util
import ipaddress
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain", "ip6-localhost"}


@contextmanager
def loaded_script(path):
    """The script at path as a module, registered under its file name while in use."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


class NetworkBlocked(RuntimeError):
    """A test tried to reach beyond this machine."""


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _no_network(event: str, args: tuple) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        if isinstance(address, tuple) and not _is_local(address[0]):
            raise NetworkBlocked(f"a test connected to {address[0]}:{address[1]}; tests must not use the network")
    elif event == "socket.getaddrinfo":
        if not _is_local(args[0]):
            raise NetworkBlocked(f"a test looked up {args[0]!r}; tests must not use the network")
    elif event == "subprocess.Popen":
        argv = [str(a) for a in (args[1] if isinstance(args[1], (list, tuple)) else [args[1]])]
        if any(os.path.basename(a).startswith("pip") or a == "pip" for a in argv) and (
                {"install", "download"} & set(argv)):
            raise NetworkBlocked(f"a test ran {' '.join(argv)}; tests must not fetch packages")


sys.addaudithook(_no_network)  # for the whole test process (an audit hook cannot be removed)


@pytest.fixture(scope="session", autouse=True)
def _build_scan_kernel_first():
    """Build (or load from cache) the compiled scan before any test, so no test's time includes the build."""
    import serpentir.ops.scan_core as scan_core

    scan_core.cpu_kernel_ops()  # a failure is logged once; `auto` then uses chunked, as for users
    yield


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


@pytest.fixture
def chunked_backend(monkeypatch):
    """`auto` resolves to the pure-PyTorch chunked scan for this test (what a machine without a compiler runs)."""
    monkeypatch.setenv("SERPENTIR_SCAN_BACKEND", "chunked")


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
