"""The memory guard's model of a forward pass: two regimes for Serpent (whole maps, and maps in pieces)."""

import pytest
import torch

from serpentir.infer.memory import SAFETY, peak_model, PeakLine, PeakModel
from serpentir.layers import pieces
from serpentir.models import create_model


def test_whole_line_up_to_the_piece_size_then_the_larger_line():
    peak = PeakModel(whole=PeakLine(10.0, 4.0), in_pieces=PeakLine(1000.0, 1.0), pieces_from=100)
    assert peak.bytes_for(50) == SAFETY * (10 + 4 * 50)
    assert peak.bytes_for(100) == SAFETY * (10 + 4 * 100)
    # beyond: the whole-map peak at the threshold still bounds from below (deeper levels stay whole)
    assert peak.bytes_for(200) == SAFETY * max(10 + 4 * 100, 1000 + 200)
    assert peak.bytes_for(10_000) == SAFETY * (1000 + 10_000)


@pytest.mark.usefixtures("compiled_kernel")  # the scan itself runs in pieces only on the fused CPU kernel
def test_serpent_in_pieces_costs_less_per_pixel_and_calibration_restores_the_piece_size():
    model = create_model("serpent-t", embed_dim=16).eval()
    before = pieces.PIECE_TOKENS
    peak = peak_model(model, 3)
    assert pieces.PIECE_TOKENS == before
    assert peak.pieces_from == before * 2 * 2  # serpent-t's patch is 2x2
    assert 0 < peak.in_pieces.per_pixel < peak.whole.per_pixel
    with torch.no_grad():  # and the model still runs whole at a size below the threshold
        assert model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
