"""Equal starts (issue 19's protocol): head_init="identity" makes a baseline start near its input, as Serpent does."""

import pytest
import torch

import serpentir

BASELINES = ["nafnet-t", "unet-t", "swinir-t", "restormer"]
NEAR = 0.02  # mean |out - in| at init; serpent-t's is 0.003, swinir-t's identity head 0.013 (larger features)


def deviation(model, x):
    """Mean |output - input| of a fresh model: 0 for an exact identity."""
    with torch.no_grad():
        return (model.eval()(x) - x).abs().mean().item()


@pytest.fixture(scope="module")
def photo_like():
    torch.manual_seed(0)
    return torch.rand(2, 3, 32, 32)


@pytest.fixture(scope="module")
def serpent_deviation(photo_like):
    torch.manual_seed(1)
    d = deviation(serpentir.create_model("serpent-t"), photo_like)
    assert 0 < d < NEAR  # the reference itself: near identity, not exactly
    return d


@pytest.mark.parametrize("name", BASELINES)
def test_identity_head_starts_like_serpent_and_default_does_not(name, photo_like, serpent_deviation):
    torch.manual_seed(1)
    near = deviation(serpentir.create_model(name, head_init="identity"), photo_like)
    torch.manual_seed(1)
    published = deviation(serpentir.create_model(name), photo_like)
    assert 0 < near < NEAR
    assert published > max(10 * serpent_deviation, 5 * near)  # today's default: a random correction to unlearn


@pytest.mark.parametrize("name,head", [("nafnet-t", "ending"), ("unet-t", "head")])
def test_identity_head_is_small_not_zero_and_gradients_flow(name, head):
    model = serpentir.create_model(name, head_init="identity")
    layer = getattr(model, head)
    assert 0 < layer.weight.std().item() < 2e-3 and torch.count_nonzero(layer.bias) == 0
    x = torch.rand(1, 3, 32, 32)
    (model(x) - torch.rand_like(x)).square().mean().backward()
    first = next(model.parameters())  # the input convolution, at the far end from the head
    assert torch.count_nonzero(first.grad) > 0


def test_head_init_is_recorded_and_default_is_unchanged():
    torch.manual_seed(3)
    plain = serpentir.create_model("unet-t")
    torch.manual_seed(3)
    explicit = serpentir.create_model("unet-t", head_init="default")
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), explicit.state_dict().values()))
    assert serpentir.create_model("nafnet-t", head_init="identity").arch["kwargs"] == {"head_init": "identity"}
    with pytest.raises(ValueError, match="head_init"):
        serpentir.create_model("nafnet-t", head_init="zeros")
    with pytest.raises(ValueError, match="head_init"):
        serpentir.create_model("swinir-t", upscale=2, upsampler="pixelshuffle", head_init="identity")
