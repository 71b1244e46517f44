"""The memory guard's model of a forward pass: two regimes for Serpent (whole maps, and maps in pieces)."""

import threading
from concurrent.futures import ThreadPoolExecutor

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


class _Probe(torch.nn.Module):
    """A stand-in model that records the piece budget each forward sees and can pause inside the pieces phase."""

    def __init__(self, pause_when_lowered: threading.Event | None = None, resume: threading.Event | None = None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.seen: list[int] = []
        self.pause_when_lowered, self.resume = pause_when_lowered, resume

    def forward(self, x):
        self.seen.append(pieces.piece_tokens())
        if self.pause_when_lowered is not None and pieces.piece_tokens() < pieces.PIECE_TOKENS:
            self.pause_when_lowered.set()
            assert self.resume.wait(30)
            self.pause_when_lowered = None
        return x * self.weight


def test_a_calibration_lowers_the_piece_budget_only_in_its_own_thread():
    paused, resume = threading.Event(), threading.Event()
    probe = _Probe(paused, resume)
    worker = threading.Thread(target=peak_model, args=(probe, 3))
    worker.start()
    try:
        assert paused.wait(60), "the calibration never reached its in-pieces phase"
        # another thread restoring meanwhile keeps the default budget: a 512-px serpent-t map runs whole
        assert pieces.piece_tokens() == pieces.PIECE_TOKENS
        assert not pieces.use_pieces(1, 256, 256)
    finally:
        resume.set()
        worker.join(60)
    lowered = (64 ** 2) // 4  # a quarter of the smallest calibration map (patch 1)
    assert set(probe.seen) == {pieces.PIECE_TOKENS, lowered}  # both phases ran, with their own budgets
    assert pieces.piece_tokens() == pieces.PIECE_TOKENS


def test_calibrations_from_several_threads_at_once_leave_the_default_budget():
    threads = 3
    models = [create_model("serpent-t", embed_dim=8, depths=(1, 1)).eval() for _ in range(threads)]
    start = threading.Barrier(threads)
    after: list[tuple[int, bool, float]] = []

    def calibrate(model):
        start.wait()
        peak = peak_model(model, 3)
        after.append((pieces.piece_tokens(), pieces.use_pieces(1, 256, 256), peak.pieces_from))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(calibrate, models))
    # every worker's later restores use the default budget (a 768-px photo is not cut into 256-token bands)
    assert after == [(pieces.PIECE_TOKENS, False, pieces.PIECE_TOKENS * 4)] * threads
    assert pieces.piece_tokens() == pieces.PIECE_TOKENS
    with ThreadPoolExecutor(2) as pool:  # and so do threads started afterwards
        assert list(pool.map(lambda _: pieces.piece_tokens(), range(2))) == [pieces.PIECE_TOKENS] * 2
