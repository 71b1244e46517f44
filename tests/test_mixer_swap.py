"""The mixer swap (issue 19, study 1): Serpent with each scan replaced by an equal-parameter depthwise conv."""

import pytest
import torch

import serpentir
from serpentir.degradations import get_task
from serpentir.layers import MultiDirectionSSM, VSSBlock
from serpentir.layers.conv_mixer import ConvMixer, conv_mixer_sizes, ssm_param_count

TOLERANCE = 0.01  # the docstring's promise: within d parameters, under 1%


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def checkpoint_module():
    import serpentir.checkpoint

    return serpentir.checkpoint


@pytest.mark.parametrize("d_inner,d_state,directions,order", [
    (32, 8, 4, "diagonal"), (64, 8, 4, "diagonal"), (256, 16, 4, "cross"), (96, 16, 2, "diagonal"),
    (40, 4, 1, "diagonal"), (72, 5, 4, "diagonal"),
])
def test_formula_and_mixer_match_a_real_scan(d_inner, d_state, directions, order):
    ssm = MultiDirectionSSM(d_inner, d_state, directions, order)
    assert ssm_param_count(d_inner, d_state, ssm.directions) == n_params(ssm)
    mixer = ConvMixer.matching_ssm(d_inner, d_state, ssm.directions)
    assert abs(n_params(mixer) - n_params(ssm)) <= min(d_inner, TOLERANCE * n_params(ssm))
    assert mixer.kernel_size % 2 == 1 and mixer.kernel_size >= 3


def test_sizes_take_the_largest_odd_kernel_first():
    # 112 parameters per channel: 9x9 + bias = 82, the remaining 30 = 2 x rank 15; 11x11 would overshoot
    assert conv_mixer_sizes(32, 32 * 112) == (9, 15)
    assert conv_mixer_sizes(10, 10 * 122) == (11, 0)
    with pytest.raises(ValueError, match="too small"):
        conv_mixer_sizes(8, 8 * 9)


@pytest.mark.parametrize("name", ["serpent-t", "serpent-b", "serpent-l"])
def test_whole_models_have_equal_parameters(name):
    with torch.device("meta"):
        scan, conv = serpentir.create_model(name), serpentir.create_model(name, mixer="conv")
    assert n_params(conv) == pytest.approx(n_params(scan), rel=TOLERANCE)
    blocks = [m for m in conv.modules() if isinstance(m, VSSBlock)]
    assert blocks and all(isinstance(b.ssm, ConvMixer) for b in blocks)
    assert not any(isinstance(m, MultiDirectionSSM) for m in conv.modules())


def test_conv_mixer_is_local_and_the_scan_is_not():
    """The property the study tests: a far pixel reaches every scan output, never a conv output."""
    torch.manual_seed(0)
    d, H, W = 32, 24, 24
    mixer, ssm = ConvMixer.matching_ssm(d, 8, 4), MultiDirectionSSM(d, 8, 4)
    x = torch.randn(1, H, W, d)
    far = x.clone()
    far[0, 0, 0] += 1.0  # a corner pixel; (20, 20) is 20 away, far beyond the 9x9 window
    reach = mixer.kernel_size // 2
    with torch.no_grad():
        dm = (mixer(far) - mixer(x)).abs().amax(-1)[0]
        ds = (ssm(far) - ssm(x)).abs().amax(-1)[0]
    assert dm[reach + 1:, reach + 1:].max() == 0  # the pointwise branch only touches the pixel itself
    assert dm[reach, reach] > 0  # the window's edge does see it
    assert ds[20, 20] > 0


def test_conv_model_trains_a_step_and_differs_from_the_scan_model():
    x, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    outs = {}
    for mixer in ("scan", "conv"):
        torch.manual_seed(0)
        model = serpentir.create_model("serpent-t", mixer=mixer)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        loss = (model(x) - target).abs().mean()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
        moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
        assert any(".ssm." in n for n in moved)  # the mixer itself learns
        with torch.no_grad():
            outs[mixer] = model(x)
    assert (outs["scan"] - outs["conv"]).abs().max() > 1e-4


def test_mixer_option_survives_a_checkpoint(tmp_path):
    ckpt = checkpoint_module()
    model = serpentir.create_model("serpent-t", mixer="conv").eval()
    path = ckpt.save_checkpoint(tmp_path / "m.safetensors", model=model, task=get_task("gaussian_deblur"), step=1)
    loaded, _, meta = ckpt.load_checkpoint(path)
    assert meta["model"]["kwargs"]["mixer"] == "conv"
    assert loaded.config.mixer == "conv" and isinstance(loaded.down[0].blocks[0].ssm, ConvMixer)
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_registered_alias_and_bad_mixer():
    model = serpentir.create_model("serpent-t-conv")
    assert model.arch_dict()["mixer"] == "conv"
    assert serpentir.create_model("serpent-t").config.mixer == "scan"  # the default is the paper's network
    with pytest.raises(ValueError, match="mixer"):
        serpentir.create_model("serpent-t", mixer="attention")


def test_conv_block_in_bands_equals_the_whole_map():
    """Large maps go through a VSS block in bands of rows under inference; the swapped mixer must not notice."""
    from serpentir.layers import pieces

    torch.manual_seed(0)
    block = VSSBlock(16, d_state=8, mixer="conv").eval()
    x = torch.randn(2, 13, 11, 16)
    with torch.no_grad():
        whole = block(x)
        with pieces.piece_budget(40):  # bands of one or two rows
            assert pieces.use_pieces(2, 13, 11)
            banded = block(x)
    torch.testing.assert_close(banded, whole, rtol=1e-5, atol=1e-5)
