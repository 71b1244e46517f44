import pytest
import torch
from safetensors.torch import load_file, save_file

import serpentir
from serpentir.layers import VSSBlock
from serpentir_lab.bench import count_flops

SWINIR_B_PARAMS = 11.5e6  # embedding 180, 6x6 Swin layers, window 8, no upsampler (SwinIR paper)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_named_sizes_and_rejects_unknown_names():
    names = serpentir.list_models()
    assert {"serpent-t", "serpent-b", "serpent-l"} <= set(names)
    with pytest.raises(KeyError, match="unknown model 'serpent-xxl'"):
        serpentir.create_model("serpent-xxl")
    with pytest.raises(ValueError, match="bad option"):
        serpentir.create_model("serpent-t", not_an_option=3)


def test_sizes_are_ordered_and_large_is_under_half_of_swinir_b():
    with torch.device("meta"):
        t, b, l = (n_params(serpentir.create_model(n)) for n in ("serpent-t", "serpent-b", "serpent-l"))
    assert t < b < l < SWINIR_B_PARAMS / 2


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 16, 16), (1, 3, 5, 9)])
def test_any_size_in_same_size_out(shape):
    model = serpentir.create_model("serpent-t").eval()
    with torch.no_grad():
        assert model(torch.rand(shape)).shape == shape


def test_grayscale_and_channel_overrides():
    gray = serpentir.create_model("serpent-t", in_channels=1, out_channels=1).eval()
    with torch.no_grad():
        assert gray(torch.rand(1, 1, 21, 30)).shape == (1, 1, 21, 30)
        to_rgb = serpentir.create_model("serpent-t", in_channels=1, out_channels=3).eval()
        assert to_rgb(torch.rand(1, 1, 16, 16)).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"expected \(N, 1, H, W\)"):
        gray(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("directions,order", [(1, "diagonal"), (2, "diagonal"), (4, "cross")])
def test_direction_options(directions, order):
    model = serpentir.create_model("serpent-t", directions=directions, order=order).eval()
    assert model.down[0].blocks[0].ssm.directions == directions
    with torch.no_grad():
        assert model(torch.rand(1, 3, 20, 24)).shape == (1, 3, 20, 24)


def test_gradients_reach_every_parameter():
    model = serpentir.create_model("serpent-t")
    model(torch.rand(2, 3, 24, 20)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


def test_eval_mode_is_deterministic():
    model = serpentir.create_model("serpent-t").eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_state_dict_round_trips_through_safetensors(tmp_path):
    model = serpentir.create_model("serpent-t").eval()
    path = tmp_path / "w.safetensors"
    save_file(model.state_dict(), str(path))
    torch.manual_seed(123)
    other = serpentir.create_model("serpent-t").eval()
    other.load_state_dict(load_file(str(path)))
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


def _corner_influence(module, x):
    """Does a change of the top-left input reach the bottom-right output?"""
    x2 = x.clone()
    x2[..., 0, 0] += 1.0
    with torch.no_grad():
        return (module(x2) - module(x))[..., -1, -1].abs().max().item()


def test_global_receptive_field_of_the_network():
    model = serpentir.create_model("serpent-t").double().eval()
    assert _corner_influence(model, torch.rand(1, 3, 64, 64, dtype=torch.float64)) > 0


def test_global_receptive_field_of_one_vss_block_without_downsampling():
    """Inside one block only the scan can carry the corner to the opposite corner (the conv is 3x3)."""
    block = VSSBlock(8, d_state=4).double().eval()
    x = torch.rand(1, 16, 16, 8, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 0, 0, 0] += 1.0  # one channel: a shift of all channels would vanish in the layer norm
    with torch.no_grad():
        diff = (block(x2) - block(x))[0, -1, -1].abs().max().item()
    assert diff > 0


def test_cost_grows_linearly_with_pixels():
    model = serpentir.create_model("serpent-b")
    c512 = count_flops(model, (1, 3, 512, 512))
    c1024 = count_flops(model, (1, 3, 1024, 1024))
    assert c512.scan_flops > 0 and c512.matmul_flops > 0
    assert abs(c1024.flops / (4 * c512.flops) - 1) < 0.05
    assert abs(c1024.macs / (4 * c512.macs) - 1) < 0.05


def test_one_cost_rule_flops_are_twice_the_macs_and_the_scan_is_counted_by_hand():
    """The field's convention everywhere: FLOPs = 2 x MACs, for the scan as for matmuls and convolutions."""
    from serpentir.ops import record_scan_cost, selective_scan

    b, d, L, n = 2, 5, 7, 3
    u, delta, z = torch.rand(b, d, L), torch.rand(b, d, L), torch.rand(b, d, L)
    with record_scan_cost() as rec:
        selective_scan(u, delta, -torch.rand(d, n), torch.rand(b, n, L), torch.rand(b, n, L), D=torch.rand(d), z=z)
    # per (batch, channel, position): 3 MACs per state element (decay times state plus input, delta_u times B,
    # C times state), one for D*u and one for the gate
    assert (rec.calls, rec.macs, rec.flops) == (1, b * d * L * (3 * n + 2), 2 * b * d * L * (3 * n + 2))
    for name in ("serpent-t", "nafnet-t", "swinir-t"):
        count = count_flops(serpentir.create_model(name), (1, 3, 64, 64))
        assert count.flops == 2 * count.macs and count.flops == count.matmul_flops + 2 * count.scan_macs


def test_training_works_after_inference_mode_in_the_same_process():
    """Cached scan orders made under inference_mode must not poison a later training step: its loss and
    gradients equal those of a twin model that never ran under inference_mode (the scan users get)."""
    model = serpentir.create_model("serpent-t", embed_dim=8, depths=(1, 1))
    twin = serpentir.create_model("serpent-t", embed_dim=8, depths=(1, 1))
    twin.load_state_dict(model.state_dict())
    with torch.inference_mode():
        model(torch.rand(1, 3, 24, 40))
    x = torch.rand(1, 3, 24, 40)
    loss, twin_loss = model(x).square().mean(), twin(x).square().mean()
    loss.backward()
    twin_loss.backward()
    torch.testing.assert_close(loss.detach(), twin_loss.detach())
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert sum(g.abs().sum() for g in grads.values()) > 0
    for name, p in twin.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, msg=name)
