"""The receptive-field probe against what a convolution's weights say, and a scan that reaches the far corner."""

import torch
from torch import nn

import serpentir
from serpentir_lab.receptive_field import radial_profile, response_map


def test_a_convolution_responds_with_its_own_weights_and_nowhere_else():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=True)
    image = torch.rand(3, 16, 20)
    p = (7, 9)
    response = response_map(conv, image, p)
    w = conv.weight.detach().double()
    expected = torch.zeros(16, 20, dtype=torch.float64)
    for a in range(3):
        for b in range(3):  # y[o, q] uses x[i, q + (a - 1, b - 1)]: the pixel p reaches q = p - (a - 1, b - 1)
            expected[p[0] - a + 1, p[1] - b + 1] = w[:, :, a, b].sum(1).abs().sum()
    assert torch.allclose(response, expected, rtol=1e-7, atol=1e-9)
    assert conv.weight.dtype == torch.float32  # the caller's model is left as it was
    profile = radial_profile(response, p, far=2)
    assert profile.far_share == 0.0 and profile.radius_at_share[0.99] <= 1
    ring1 = [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]  # sqrt(2) rounds to 1
    assert abs(profile.mean_response[1] - sum(float(expected[p[0] + r, p[1] + c]) for r, c in ring1) / 8) < 1e-9
    assert abs(profile.total - float(expected.sum())) < 1e-9


def test_the_scan_carries_one_pixel_to_the_far_corner():
    torch.manual_seed(0)
    model = serpentir.create_model("serpent-t", embed_dim=8).eval()
    image = torch.rand(3, 32, 32)
    response = response_map(model, image, (1, 1))
    assert response[-1, -1] > 1e-12  # 42 pixels away: beyond any of the network's convolutions
    profile = radial_profile(response, (1, 1), far=8)
    assert profile.far_share > 0 and profile.distances[-1] == round((30 ** 2 + 30 ** 2) ** 0.5)
    assert profile.radius_at_share[0.5] <= profile.radius_at_share[0.9] <= profile.radius_at_share[0.99]


def test_only_the_colour_channels_are_bumped_when_told():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 3, 3, padding=1, bias=False)  # a fourth input channel, as an inpainting mask
    image = torch.rand(4, 12, 12)
    p = (5, 6)
    w = conv.weight.detach().double()
    for channels, used in ((None, 4), (3, 3)):
        response = response_map(conv, image, p, channels=channels)
        expected = w[:, :used, 1, 1].sum(1).abs().sum()  # the centre tap of the bumped input channels
        assert abs(float(response[p]) - float(expected)) < 1e-8
