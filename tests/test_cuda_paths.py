"""The GPU paths (benchmarks/gpu/run.sh runs this file on a GPU): scans and models on a device against a
float64 CPU reference. Each test runs on the CPU too, so the comparisons themselves are checked here."""

import pytest
import torch

import serpentir
from serpentir.ops import available_backends, selective_scan, selective_scan_ref

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=NO_CUDA)]


def scan_inputs(batch=2, dim=8, N=4, L=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    A = -(torch.rand(dim, N, generator=g) + 0.2).double()
    return dict(u=rand(batch, dim, L), delta=rand(batch, dim, L) * 0.5, A=A,
                B=rand(batch, N, L), C=rand(batch, N, L), D=rand(dim), delta_bias=rand(dim) * 0.1)


def value_and_grads(fn, inputs, device, dtype):
    leaves = {k: v.to(device, dtype).requires_grad_() for k, v in inputs.items()}
    y = fn(**leaves, delta_softplus=True)
    weight = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=y.device).view_as(y)
    grads = torch.autograd.grad((y * weight).sum(), list(leaves.values()))
    return y.double().cpu(), [g.double().cpu() for g in grads]


@pytest.mark.parametrize("device", DEVICES)
def test_every_scan_backend_of_the_device_matches_the_float64_reference(device):
    inputs = scan_inputs()
    y_ref, g_ref = value_and_grads(selective_scan_ref, inputs, "cpu", torch.float64)
    backends = [b for b in available_backends(device) if b != "ref"]
    assert "chunked" in backends
    for backend in backends:
        y, grads = value_and_grads(lambda **kw: selective_scan(**kw, backend=backend), inputs, device, torch.float32)
        torch.testing.assert_close(y, y_ref, rtol=1e-3, atol=1e-4, msg=f"{backend} output")
        for name, g, r in zip(inputs, grads, g_ref):
            torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-3, msg=f"{backend} d{name}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,kwargs", [("serpent-t", {}), ("serpent-t", {"mixer": "conv"}), ("nafnet-t", {}),
                                         ("unet-t", {}), ("swinir-t", {})])
def test_model_forward_and_gradients_on_the_device_match_float64_cpu(device, name, kwargs):
    torch.manual_seed(0)
    model = serpentir.create_model(name, **kwargs)
    reference = serpentir.create_model(name, **kwargs).double()
    reference.load_state_dict(model.state_dict())
    model.to(device)
    x = torch.rand(1, 3, 24, 40, dtype=torch.float64)
    out = model(x.to(device, torch.float32))
    ref = reference(x)
    torch.testing.assert_close(out.double().cpu(), ref, rtol=1e-4, atol=2e-4)
    out.square().mean().backward()
    ref.square().mean().backward()
    for (n, p), q in zip(model.named_parameters(), reference.parameters()):
        scale = q.grad.abs().max().item() + 1e-12
        assert (p.grad.double().cpu() - q.grad).abs().max().item() <= 2e-3 * scale + 1e-7, n


@pytest.mark.parametrize("device", DEVICES)
def test_training_steps_on_the_device_lower_the_loss(device):
    torch.manual_seed(0)
    model = serpentir.create_model("serpent-t").to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    clean = torch.rand(2, 3, 32, 32, device=device)
    noisy = clean + 0.1 * torch.randn_like(clean)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = (model(noisy) - clean).abs().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0]  # 0.88 on the CPU after 8 steps


@NO_CUDA
def test_bfloat16_autocast_on_cuda_stays_near_float32():
    model = serpentir.create_model("serpent-t").cuda().eval()
    x = torch.rand(1, 3, 64, 64, device="cuda")
    with torch.no_grad():
        full = model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = model(x)
    assert torch.isfinite(half).all() and (half.float() - full).abs().mean() < 0.02
