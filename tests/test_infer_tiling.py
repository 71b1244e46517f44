"""Tiled inference: the blend window gives every pixel weight, and a model that only looks a few pixels
around gives exactly its whole-image output (seams cannot come from the blending itself)."""

import pytest
import torch
from torch import nn

from serpentir.errors import UserError
from serpentir.infer.tiling import blend_window, run_tiled, tile_starts


def test_tiles_cover_the_image_with_the_requested_overlap():
    assert tile_starts(100, 40, 16) == [0, 24, 48, 60]
    assert tile_starts(30, 40, 16) == [0]
    for size, tile, overlap in [(100, 40, 16), (97, 33, 8), (64, 64, 16), (65, 64, 31)]:
        starts = tile_starts(size, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == size
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_window_is_zero_only_where_context_was_cut_off():
    w = blend_window(40, 16, ramp_start=True, ramp_end=False)
    assert torch.all(w[:4] == 0) and torch.all(w[4:16] > 0) and torch.all(w[16:] == 1)
    assert torch.all(torch.diff(w[:16]) >= 0)
    assert torch.equal(blend_window(40, 16, False, False), torch.ones(40))


@pytest.mark.parametrize("shape, tile, overlap", [((70, 90), 32, 16), ((33, 100), 40, 20), ((20, 24), 64, 32)])
def test_local_model_tiles_exactly(shape, tile, overlap):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 5, padding=2))  # sees 3 px around
    x = torch.rand(2, 3, *shape)
    with torch.no_grad():
        whole = model(x)
    tiled = run_tiled(model, x, tile, overlap)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-5


def test_bad_tile_options():
    model = nn.Conv2d(3, 3, 1)
    with pytest.raises(UserError, match="at least 8"):
        run_tiled(model, torch.rand(1, 3, 16, 16), 4)
    with pytest.raises(UserError, match=">= 0"):
        run_tiled(model, torch.rand(1, 3, 16, 16), 8, -1)


def test_untiled_progress_steps_once_per_network_stage():
    """A large untiled image gets coarse progress: every stage of serpent-t reports, and the output is unchanged."""
    import serpentir
    from serpentir.infer.inference import forward_with_progress, network_stages

    class Counter:
        n = 0

        def update(self):
            self.n += 1
            return True  # as tqdm's update does when it redraws: must not leak into the network

    model = serpentir.create_model("serpent-t").eval()
    x = torch.rand(1, 3, 32, 40)
    counter = Counter()
    with torch.no_grad():
        y = forward_with_progress(model, x, counter)
        assert torch.equal(y, model(x))
    assert counter.n == len(network_stages(model)) == 9  # embed, 3 down, bottleneck, 3 up, head
    assert not any(m._forward_hooks for m in network_stages(model))  # hooks removed afterwards
