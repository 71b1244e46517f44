"""The compiled CPU backend against the sequential reference, and the fallback when it is unavailable.

The suite builds the C++ kernel once (50-90 s on a fresh machine, then torch's cache) and runs it
wherever `auto` would (tests/conftest.py); this module fails loudly where it cannot be built.
"""

import logging

import pytest
import torch
from test_selective_scan import CASES, assert_matches_ref, make_inputs, run

import serpentir.ops.scan_core as scan_core
from serpentir.ops import available_backends, resolve_backend, selective_scan, selective_scan_ref
from serpentir.ops.scan_cpu import selective_scan_cpu


pytestmark = pytest.mark.usefixtures("compiled_kernel")


@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_cpu_matches_reference_values_and_gradients(case, softplus):
    """CASES' chunk is the checkpoint interval here: L=1, L not a multiple of it, one chunk, ..."""
    spec = dict(CASES[case])
    chunk = spec.pop("chunk", None)
    assert_matches_ref(make_inputs(**spec), selective_scan_cpu, delta_softplus=softplus, chunk_size=chunk)


@pytest.mark.parametrize("spec", [
    dict(batch=1, dim=22, L=19, N=3, groups=2),  # 11 channels per group: a full and a partial block of 8
    dict(batch=2, dim=40, L=33, N=16, groups=1),  # N = 16 takes the unrolled path; 5 blocks in one group
    dict(batch=1, dim=24, L=70, N=16, groups=3),
])
def test_channel_blocks_and_state_sizes(spec):
    assert_matches_ref(make_inputs(**spec), selective_scan_cpu, delta_softplus=True, chunk_size=8)


def test_backward_split_over_more_threads_than_groups():
    """batch * groups < threads: channel blocks of one group are spread over slices, summed after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        assert_matches_ref(make_inputs(batch=1, dim=40, L=25, N=4), selective_scan_cpu, delta_softplus=True,
                           chunk_size=6)
    finally:
        torch.set_num_threads(threads)


def test_without_D_z_and_bias():
    inputs = make_inputs(batch=2, dim=4, L=23, N=3)
    for k in ("D", "z", "delta_bias"):
        inputs.pop(k)
    assert_matches_ref(inputs, selective_scan_cpu, chunk_size=6)


def test_B_and_C_with_different_group_counts():
    inputs = make_inputs(batch=1, dim=6, L=15, N=2, groups=3)
    inputs["B"] = inputs["B"][:, 0]  # 3-D B (one group), 4-D C (three groups)
    assert_matches_ref(inputs, selective_scan_cpu, delta_softplus=True, chunk_size=4)


def test_strided_inputs_are_read_in_place():
    """Token-major (B, L, D) tensors seen as (B, D, L) give the same answer as contiguous ones."""
    inputs = make_inputs(batch=2, dim=9, L=21, N=4, groups=3)
    strided = {k: (v.transpose(1, 2).contiguous().transpose(1, 2) if k in ("u", "delta", "z") else v)
               for k, v in inputs.items()}
    assert not strided["u"].is_contiguous()
    y_s, l_s, g_s = run(selective_scan_cpu, strided, delta_softplus=True, chunk_size=5)
    y_c, l_c, g_c = run(selective_scan_cpu, inputs, delta_softplus=True, chunk_size=5)
    torch.testing.assert_close(y_s, y_c, rtol=0, atol=0)
    for name in g_c:
        torch.testing.assert_close(g_s[name], g_c[name], rtol=1e-12, atol=1e-12)


def test_gradient_through_the_last_state_only():
    inputs = make_inputs(batch=1, dim=5, L=13, N=3)
    grads = {}
    for name, fn in (("ref", selective_scan_ref), ("cpu", selective_scan_cpu)):
        leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
        _, last = fn(**leaves, delta_softplus=True, return_last_state=True)
        last.square().sum().backward()
        grads[name] = {k: v.grad for k, v in leaves.items()}
    for k, g in grads["ref"].items():
        expected = torch.zeros_like(inputs[k]) if g is None else g  # y-only inputs (D, z) get no gradient
        got = grads["cpu"][k]
        torch.testing.assert_close(torch.zeros_like(expected) if got is None else got, expected, rtol=1e-9,
                                   atol=1e-9)


def test_forward_without_grad_matches():
    inputs = make_inputs(batch=1, dim=8, L=40, N=4, dtype=torch.float32)
    with torch.no_grad():
        y = selective_scan_cpu(**inputs, delta_softplus=True)
    torch.testing.assert_close(y, selective_scan_ref(**inputs, delta_softplus=True), rtol=1e-5, atol=1e-5)


def test_strong_decays_stay_finite_in_float32():
    # L=520: several chunks and eight 64-step checkpoints of strong decay (the reference is a Python loop)
    inputs = make_inputs(batch=1, dim=8, L=520, N=16, delta_scale=5.0, delta_offset=30.0, dtype=torch.float32)
    y_c, l_c, g_c = run(selective_scan_cpu, inputs, delta_softplus=True)
    y_r, l_r, g_r = run(selective_scan_ref, inputs, delta_softplus=True)
    assert torch.isfinite(y_c).all() and all(torch.isfinite(g).all() for g in g_c.values())
    torch.testing.assert_close(y_c, y_r, rtol=1e-4, atol=1e-4)
    for name in g_r:
        torch.testing.assert_close(g_c[name], g_r[name], rtol=1e-4, atol=1e-4)


def test_huge_delta_underflows_to_zero_decay():
    """|delta * A| in the thousands: the decay is exactly 0 and the state is the last input alone."""
    inputs = make_inputs(batch=1, dim=8, L=30, N=16, delta_scale=0.0, delta_offset=2000.0, dtype=torch.float32)
    y = selective_scan_cpu(**inputs)
    torch.testing.assert_close(y, selective_scan_ref(**inputs), rtol=1e-5, atol=1e-3)


def test_float32_is_as_accurate_as_the_float32_reference():
    """Against the float64 truth: the kernel's float32 error is no worse than the reference's own."""
    inputs = make_inputs(batch=2, dim=20, L=300, N=16, groups=2, dtype=torch.float32)
    truth = run(selective_scan_ref, {k: v.double() for k, v in inputs.items()}, delta_softplus=True)
    ref32 = run(selective_scan_ref, inputs, delta_softplus=True)
    cpu32 = run(selective_scan_cpu, inputs, delta_softplus=True)

    def rel_err(a, b):
        return ((a.double() - b).abs().max() / b.abs().max()).item()

    for name, (t, r, c) in dict(y=(truth[0], ref32[0], cpu32[0]), last=(truth[1], ref32[1], cpu32[1])).items():
        assert rel_err(c, t) < max(2 * rel_err(r, t), 1e-6), name
    for name in truth[2]:
        assert rel_err(cpu32[2][name], truth[2][name]) < max(2 * rel_err(ref32[2][name], truth[2][name]), 1e-6), name


def test_gradcheck_float64():
    inputs = make_inputs(batch=1, dim=2, L=7, N=2, groups=1)
    names = list(inputs)
    leaves = [inputs[k].requires_grad_() for k in names]

    def f(*args):
        return selective_scan_cpu(**dict(zip(names, args)), delta_softplus=True, return_last_state=True, chunk_size=3)

    assert torch.autograd.gradcheck(f, leaves)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32(dtype):
    inputs = make_inputs(batch=1, dim=12, L=64, N=4, dtype=torch.float32)
    low = {k: v.to(dtype) for k, v in inputs.items()}
    y_c, last, grads = run(lambda **kw: selective_scan(**kw, backend="cpu"), low, delta_softplus=True)
    assert y_c.dtype == dtype and last.dtype == torch.float32
    assert all(grads[k].dtype == dtype for k in grads)
    y_r, _, grads_r = run(selective_scan_ref, {k: v.float() for k, v in low.items()}, delta_softplus=True)
    torch.testing.assert_close(y_c.float(), y_r, rtol=1e-2, atol=1e-2)
    for name in ("u", "delta", "z", "B"):
        torch.testing.assert_close(grads[name].float(), grads_r[name], rtol=5e-2, atol=5e-2)


def test_dispatcher_prefers_the_compiled_backend_on_cpu(monkeypatch):
    monkeypatch.delenv("SERPENTIR_SCAN_BACKEND", raising=False)
    assert available_backends("cpu") == ["cpu", "chunked", "ref"]
    u = torch.zeros(1, 2, 3)
    assert resolve_backend("auto", u) == "cpu"
    monkeypatch.setenv("SERPENTIR_SCAN_BACKEND", "chunked")
    assert resolve_backend("auto", u) == "chunked"
    inputs = make_inputs(batch=1, dim=4, L=30, N=3, dtype=torch.float32)
    torch.testing.assert_close(selective_scan(**inputs, backend="cpu"), selective_scan(**inputs, backend="ref"),
                               rtol=1e-5, atol=1e-5)


@pytest.fixture
def fresh_load():
    """Forget this process's kernel load before and after the test (the library itself stays loaded)."""
    scan_core.cpu_kernel_load.cache_clear()
    scan_core._log_disabled.cache_clear()
    yield
    scan_core.cpu_kernel_load.cache_clear()


def test_disabled_kernel_falls_back_to_chunked(monkeypatch, caplog, fresh_load):
    monkeypatch.setenv(scan_core.DISABLE_ENV, "1")
    monkeypatch.delenv("SERPENTIR_SCAN_BACKEND", raising=False)
    with caplog.at_level(logging.INFO, logger="serpentir.scan"):
        assert available_backends("cpu") == ["chunked", "ref"]
        assert resolve_backend("auto", torch.zeros(1, 2, 3)) == "chunked"
    lines = [r for r in caplog.records if scan_core.DISABLE_ENV in r.getMessage()]
    assert len(lines) == 1 and "fallback: chunked PyTorch" in lines[0].getMessage()
    with pytest.raises(RuntimeError, match="'cpu' selective-scan backend is unavailable"):
        selective_scan(**make_inputs(batch=1, dim=2, L=3, N=2), backend="cpu")


def test_failed_build_warns_once_and_falls_back(monkeypatch, caplog, fresh_load):
    """No shipped binary and no compiler (simulated): one warning for the whole process, and 'auto' uses 'chunked'."""
    monkeypatch.delenv(scan_core.DISABLE_ENV, raising=False)
    monkeypatch.delenv("SERPENTIR_SCAN_BACKEND", raising=False)
    calls = []

    def no_compiler(root=None):
        calls.append(1)
        raise RuntimeError("Error building extension: c++: command not found")

    monkeypatch.setattr(scan_core.scan_cpu_shipped, "load_shipped", lambda: (None, "none in this install"))
    monkeypatch.setattr(scan_core.scan_cpu_build, "build_and_load", no_compiler)
    with caplog.at_level(logging.WARNING, logger="serpentir.scan"):
        for _ in range(3):
            assert available_backends("cpu")[0] == "chunked"
        inputs = make_inputs(batch=1, dim=4, L=12, N=3, dtype=torch.float32)
        torch.testing.assert_close(selective_scan(**inputs), selective_scan_ref(**inputs), rtol=1e-5, atol=1e-5)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(calls) == 1 and len(warnings) == 1
    assert "fallback: chunked PyTorch" in warnings[0].getMessage()
    assert "command not found" in warnings[0].getMessage()
    assert "command not found" in scan_core.cpu_kernel_error()


def test_verbose_log_names_the_path_taken(caplog, fresh_load):
    """What `-v` prints: the shipped binary, or where the first-use build lives."""
    with caplog.at_level(logging.INFO, logger="serpentir.scan"):
        load = scan_core.cpu_kernel_load()
    assert load.ok and load.how in ("shipped", "built", "cached")
    said = " ".join(r.getMessage() for r in caplog.records)
    expected = "scan kernel: shipped binary" if load.how == "shipped" else "first-use build in" if load.how == \
        "cached" else "built on first use in"
    assert expected in said and str(load.path.parent) in said
