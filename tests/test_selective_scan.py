"""Every scan backend against the sequential reference, and the reference against hand-computed values."""

import math

import pytest
import torch

import serpentir.ops.scan_chunked as scan_chunked
from serpentir.ops import available_backends, resolve_backend, selective_scan, selective_scan_chunked, selective_scan_ref

F64 = torch.float64


def make_inputs(batch, dim, L, N, groups=None, delta_scale=1.0, delta_offset=0.0, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    bc_shape = (batch, N, L) if groups is None else (batch, groups, N, L)
    return dict(
        u=rand(batch, dim, L),
        delta=(rand(batch, dim, L).abs() * delta_scale + delta_offset),
        A=-(torch.rand(dim, N, generator=g, dtype=dtype) * 2 + 0.1),
        B=rand(*bc_shape), C=rand(*bc_shape),
        D=rand(dim), z=rand(batch, dim, L), delta_bias=rand(dim) * 0.1,
    )


def run(fn, inputs, grad_seed=1, **kw):
    """Outputs and gradients of all inputs for a fixed random cotangent on y and the last state."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    y, last = fn(**leaves, return_last_state=True, **kw)
    g = torch.Generator().manual_seed(grad_seed)
    gy = torch.randn(y.shape, generator=g, dtype=y.dtype)
    gl = torch.randn(last.shape, generator=g, dtype=last.dtype)
    loss = (y * gy).sum() + (last * gl).sum()
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return y, last, dict(zip(leaves, grads))


def assert_matches_ref(inputs, fn, rtol=1e-9, atol=1e-9, **kw):
    kw_ref = {k: v for k, v in kw.items() if k in ("delta_softplus",)}
    y_r, l_r, g_r = run(selective_scan_ref, inputs, **kw_ref)
    y_c, l_c, g_c = run(fn, inputs, **kw)
    torch.testing.assert_close(y_c, y_r, rtol=rtol, atol=atol)
    torch.testing.assert_close(l_c, l_r, rtol=rtol, atol=atol)
    for name in g_r:
        torch.testing.assert_close(g_c[name], g_r[name], rtol=rtol, atol=atol, msg=lambda m: f"d{name}: {m}")


CASES = {
    "L=1": dict(batch=2, dim=4, L=1, N=3),
    "L not a multiple of the chunk": dict(batch=2, dim=4, L=37, N=3, chunk=5),
    "one chunk shorter than L": dict(batch=1, dim=3, L=11, N=2, chunk=16),
    "groups=2": dict(batch=2, dim=6, L=29, N=4, groups=2, chunk=6),
    "groups=3, 4-D B/C": dict(batch=1, dim=6, L=20, N=2, groups=3, chunk=4),
    "groups=1, 4-D B/C": dict(batch=1, dim=4, L=17, N=2, groups=1, chunk=4),
    "tiny delta": dict(batch=2, dim=4, L=40, N=3, chunk=8, delta_scale=1e-6),
    "strong decays (|delta*A| up to ~70)": dict(batch=1, dim=4, L=50, N=4, chunk=7, delta_scale=10.0, delta_offset=20.0),
    "default chunk, long": dict(batch=1, dim=2, L=300, N=2),
}


@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_chunked_matches_reference_values_and_gradients(case, softplus):
    spec = dict(CASES[case])
    chunk = spec.pop("chunk", None)
    inputs = make_inputs(**spec)
    assert_matches_ref(inputs, selective_scan_chunked, delta_softplus=softplus, chunk_size=chunk)


def test_chunked_in_several_chunk_groups(monkeypatch):
    """A small element budget forces the backward to walk the chunks group by group."""
    monkeypatch.setattr(scan_chunked, "GROUP_ELEMENT_BUDGET", 4 * 2 * 3 * 3)
    inputs = make_inputs(batch=2, dim=3, L=45, N=3)
    assert_matches_ref(inputs, selective_scan_chunked, delta_softplus=True, chunk_size=4)


def test_without_D_z_and_bias():
    inputs = make_inputs(batch=2, dim=4, L=23, N=3)
    for k in ("D", "z", "delta_bias"):
        inputs.pop(k)
    assert_matches_ref(inputs, selective_scan_chunked, chunk_size=6)


def test_strong_decays_stay_finite_in_float32():
    # L=520: several chunks and eight 64-step checkpoints of strong decay (the reference is a Python loop)
    inputs = make_inputs(batch=1, dim=8, L=520, N=16, delta_scale=5.0, delta_offset=30.0, dtype=torch.float32)
    y = selective_scan_chunked(**inputs)
    y_ref = selective_scan_ref(**inputs)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)


def test_reference_against_hand_computed_recurrence():
    """One channel, one state, three steps, computed with math.exp on plain floats."""
    u, delta, A, B, C, D, z = [1.0, -2.0, 0.5], [0.5, 1.0, 2.0], -0.7, [0.3, -1.0, 2.0], [1.5, 0.2, -0.4], 0.25, [0.1, -1.0, 2.0]
    h, expect = 0.0, []
    for t in range(3):
        h = math.exp(delta[t] * A) * h + delta[t] * B[t] * u[t]
        y = C[t] * h + D * u[t]
        expect.append(y * z[t] / (1 + math.exp(-z[t])))
    t64 = lambda v: torch.tensor(v, dtype=F64)  # noqa: E731
    y = selective_scan_ref(t64([[u]]), t64([[delta]]), t64([[A]]), t64([[B]]), t64([[C]]), D=t64([D]), z=t64([[z]]))
    torch.testing.assert_close(y[0, 0], t64(expect), rtol=1e-12, atol=1e-12)
    y_chunked = selective_scan_chunked(t64([[u]]), t64([[delta]]), t64([[A]]), t64([[B]]), t64([[C]]), D=t64([D]),
                                       z=t64([[z]]), chunk_size=2)
    torch.testing.assert_close(y_chunked[0, 0], t64(expect), rtol=1e-12, atol=1e-12)


def test_gradcheck_float64():
    inputs = make_inputs(batch=1, dim=2, L=7, N=2, groups=1)
    names = list(inputs)
    leaves = [inputs[k].requires_grad_() for k in names]

    def f(*args):
        return selective_scan_chunked(**dict(zip(names, args)), delta_softplus=True, return_last_state=True,
                                      chunk_size=3)

    assert torch.autograd.gradcheck(f, leaves)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32(dtype):
    inputs = make_inputs(batch=1, dim=4, L=64, N=4, dtype=torch.float32)
    low = {k: v.to(dtype) for k, v in inputs.items()}
    y = selective_scan(**low, backend="chunked")
    assert y.dtype == dtype
    ref = selective_scan_ref(**{k: v.float() for k, v in low.items()})
    torch.testing.assert_close(y.float(), ref, rtol=1e-2, atol=1e-2)


def test_auto_backend_on_cpu_and_override(monkeypatch):
    u = torch.zeros(1, 2, 3)
    monkeypatch.delenv("SERPENTIR_SCAN_BACKEND", raising=False)
    assert resolve_backend("auto", u) == available_backends("cpu")[0]
    assert "cuda" not in available_backends("cpu")
    monkeypatch.setenv("SERPENTIR_SCAN_BACKEND", "ref")
    assert resolve_backend("auto", u) == "ref"
    with pytest.raises(ValueError, match="unknown selective-scan backend"):
        resolve_backend("fast", u)
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_backend("cuda", u)


def test_dispatcher_gives_the_same_answer_for_every_backend():
    inputs = make_inputs(batch=1, dim=4, L=30, N=3, dtype=torch.float32)
    ref = selective_scan(**inputs, delta_softplus=True, backend="ref")
    for name in available_backends("cpu"):
        torch.testing.assert_close(selective_scan(**inputs, delta_softplus=True, backend=name), ref,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", ["A", "B", "D", "z"])
def test_shape_errors_are_clear(bad):
    inputs = make_inputs(batch=1, dim=4, L=10, N=3)
    inputs[bad] = inputs[bad][:-1] if bad in ("A", "D") else inputs[bad][..., :-1]
    with pytest.raises(ValueError, match=bad):
        selective_scan(**inputs)
