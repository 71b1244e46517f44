import pytest
import torch

import serpentir
from serpentir.models.swinir import SwinIR
from serpentir_lab.bench import count_flops

BASELINES = ["swinir-s", "swinir-b", "swinir-l", "restormer", "nafnet-w32", "nafnet-w64", "unet"]
SMALL = ["swinir-s", "restormer", "nafnet-w32", "unet"]  # one per architecture, for the slower checks

# Published parameter counts (papers / official repositories).
SWINIR_CLASSICAL_SR_X4 = 11.9e6  # SwinIR paper, classical SR x4: embed 180, 6x6 layers, pixelshuffle
RESTORMER = 26.13e6  # Restormer paper, Table 1 setting
NAFNET_W32 = 17.11e6  # NAFNet GoPro, width 32
NAFNET_W64 = 67.89e6  # NAFNet GoPro, width 64


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_params(name: str, **overrides) -> int:
    with torch.device("meta"):
        return n_params(serpentir.create_model(name, **overrides))


def test_every_baseline_is_registered():
    assert set(BASELINES) <= set(serpentir.list_models())


@pytest.mark.parametrize("name", BASELINES)
def test_odd_size_in_same_size_out(name):
    model = serpentir.create_model(name).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 19, 23)).shape == (1, 3, 19, 23)


@pytest.mark.parametrize("name", SMALL)
def test_grayscale_and_mask_channel(name):
    gray = serpentir.create_model(name, in_channels=1, out_channels=1).eval()
    masked = serpentir.create_model(name, in_channels=4, out_channels=3).eval()
    with torch.no_grad():
        assert gray(torch.rand(1, 1, 21, 30)).shape == (1, 1, 21, 30)
        assert masked(torch.rand(1, 4, 17, 12)).shape == (1, 3, 17, 12)
    with pytest.raises(ValueError, match=r"expected \(N, 1, H, W\)"):
        gray(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("name", SMALL)
def test_residual_passes_the_image_through(name):
    """The global residual: zeroing the last layer leaves exactly the input's first channels."""
    model = serpentir.create_model(name, in_channels=4, out_channels=3).eval()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    if last.bias is not None:
        torch.nn.init.zeros_(last.bias)
    x = torch.rand(1, 4, 13, 18)
    with torch.no_grad():
        assert torch.allclose(model(x), x[:, :3])


@pytest.mark.parametrize("name", BASELINES)
def test_gradients_reach_every_parameter(name):
    model = serpentir.create_model(name)
    x = torch.rand(1, 3, 19, 23, requires_grad=True)
    model(x).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert x.grad.abs().sum() > 0
    # NAFNet's block gains start at zero (blocks start as identity): those gains still get gradients
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.endswith(("beta", "gamma")))


def test_swinir_classical_sr_x4_matches_published_parameters():
    with torch.device("meta"):
        model = SwinIR(embed_dim=180, depths=(6,) * 6, num_heads=6, window_size=8, mlp_ratio=2.0,
                       upscale=4, upsampler="pixelshuffle")
    assert n_params(model) == pytest.approx(SWINIR_CLASSICAL_SR_X4, rel=0.01)


def test_swinir_upscales():
    model = SwinIR(embed_dim=12, depths=(2,), num_heads=2, window_size=4, upscale=2, upsampler="pixelshuffle",
                   upsampler_features=8).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 9, 7)).shape == (1, 3, 18, 14)


def test_swinir_sizes_are_ordered_and_b_is_the_denoising_form():
    s, b, l = (meta_params(n) for n in ("swinir-s", "swinir-b", "swinir-l"))
    assert s < b < l
    assert b == pytest.approx(11.5e6, rel=0.01)


@pytest.mark.parametrize("name,published", [
    ("restormer", RESTORMER), ("nafnet-w32", NAFNET_W32), ("nafnet-w64", NAFNET_W64),
])
def test_published_parameter_counts(name, published):
    assert meta_params(name) == pytest.approx(published, rel=0.01)


def test_unet_has_serpent_b_parameter_budget():
    assert meta_params("unet") == pytest.approx(meta_params("serpent-b"), rel=0.10)


@pytest.mark.parametrize("name", ["swinir-t", "nafnet-t", "unet-t", "restormer-t"])
def test_tiny_baselines_have_serpent_t_parameter_budget(name):
    """The same-budget comparison (configs/compare/) needs every rival within 10% of serpent-t's size."""
    assert meta_params(name) == pytest.approx(meta_params("serpent-t"), rel=0.10)
    model = serpentir.create_model(name).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 21, 26)).shape == (1, 3, 21, 26)


def test_shifted_windows_mask_across_the_wrap():
    """A shifted layer must not let tokens that only meet through the cyclic roll attend to each other."""
    from serpentir.models.swinir import shifted_window_mask

    mask = shifted_window_mask(16, 16, 8, 4, torch.device("cpu"))
    assert mask.shape == (4, 64, 64)
    assert (mask[0] == 0).all()  # the first window never wraps
    assert torch.isinf(mask[-1]).any()  # the last one mixes four regions


def test_swinir_attention_is_counted_by_the_flop_counter():
    """Window attention through scaled_dot_product_attention shows up in the FLOP count."""
    model = SwinIR(embed_dim=24, depths=(2,), num_heads=2, window_size=8)
    with_attention = count_flops(model, (1, 3, 32, 32)).flops
    tokens, n, d, layers = 32 * 32, 64, 24, 2
    attention = layers * 2 * (2 * tokens * n * d)  # q.k^T and attn.v
    linear = sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight") and p.dim() == 2)
    convs = sum(p.numel() for p in model.parameters() if p.dim() == 4)
    assert with_attention == pytest.approx(2 * tokens * (linear + convs) + attention, rel=0.02)
