"""The weight-space line between two checkpoints: its ends are the two models, its middle their mean."""

import pytest
import torch

from serpentir.checkpoint import build_model, build_task, load_checkpoint, read_metadata, save_checkpoint
from serpentir.errors import UserError
from serpentir_lab.release.weight_path import interpolate, write_weight_path


def _checkpoint(path, seed: int, width: int = 8):
    torch.manual_seed(seed)
    task = build_task("denoise")
    model = build_model("serpent-t", {"embed_dim": width}, channels=3, extra_channels=0)
    return save_checkpoint(path, model=model, task=task, step=seed, config={"seed": seed}), model


def test_the_path_runs_from_a_to_b_through_their_mean(tmp_path):
    a, model_a = _checkpoint(tmp_path / "a.safetensors", 0)
    b, model_b = _checkpoint(tmp_path / "b.safetensors", 1)
    sa, sb = model_a.state_dict(), model_b.state_dict()
    written = write_weight_path(a, b, [0, 0.5, 1], tmp_path / "run")
    assert [p.name for p in written] == ["step_0000000.safetensors", "step_0000500.safetensors",
                                         "step_0001000.safetensors"]
    ends = {0: sa, 1000: sb}
    for path in written:
        step = read_metadata(path)["step"]
        got = load_checkpoint(path)[0].state_dict()
        for name, value in got.items():
            want = ends[step][name] if step in ends else (sa[name] + sb[name]) / 2
            assert torch.allclose(value, want, atol=1e-6), (step, name)
    assert read_metadata(written[1])["config"] == {"seed": 1}


def test_different_networks_and_shares_outside_0_1_are_refused(tmp_path):
    a, _ = _checkpoint(tmp_path / "a.safetensors", 0)
    wide, _ = _checkpoint(tmp_path / "w.safetensors", 1, width=16)
    with pytest.raises(UserError, match="different network"):
        interpolate(a, wide, 0.5)
    with pytest.raises(UserError, match="between 0 and 1"):
        interpolate(a, a, 1.5)
    with pytest.raises(UserError, match="between 0 and 1"):
        write_weight_path(a, a, [0.5, 1.5], tmp_path / "run")
    assert not (tmp_path / "run").exists()  # a bad share is refused before any point is written
