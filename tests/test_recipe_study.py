"""benchmarks/recipe_study.py: its interval is the library's, and its per-strength columns add up to its classes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import loaded_script
from real_photos import photo

from serpentir.checkpoint import build_model, build_task, save_checkpoint
from serpentir.train import last_checkpoint
from serpentir_lab import stats
from serpentir_lab.release.blind_validation import STRENGTHS

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "recipe_study.py"
pytestmark = pytest.mark.usefixtures("one_thread")


def test_recipe_study_uses_the_library_interval():
    with loaded_script(SCRIPT) as module:
        assert module.bootstrap_interval is stats.bootstrap_interval
    assert "def bootstrap_interval" not in SCRIPT.read_text()  # one implementation, not a copy


def test_per_strength_scores_are_the_class_scores_split(tmp_path):
    """One column per strength of a one-class task; their mean is the class' column, and the cache tells them apart."""
    torch.manual_seed(0)
    task = build_task("deblur")
    model = build_model("serpent-t", {"embed_dim": 8}, channels=3, extra_channels=task.extra_channels)
    run_dir = tmp_path / "run"
    last_checkpoint(run_dir).parent.mkdir(parents=True)
    save_checkpoint(last_checkpoint(run_dir), model=model, task=task, step=0)
    photos = [("astronaut", photo("astronaut", (48, 40), top=60, left=200)),
              ("coffee", photo("coffee", (40, 48), top=100, left=200))]
    key = {"photos": ["astronaut", "coffee"], "steps": 0}
    with loaded_script(SCRIPT) as module:
        per_class = module.score_run(run_dir, "deblur", photos, {**key, "per_strength": False})
        per_strength = module.score_run(run_dir, "deblur", photos, {**key, "per_strength": True}, per_strength=True)
    labels = [label for label, _, _ in STRENGTHS["deblur"]]
    assert list(per_class) == ["blur"]
    assert list(per_strength) == labels
    for name, _ in photos:
        split = [per_strength[label][name] for label in labels]
        assert np.mean(split) == pytest.approx(per_class["blur"][name], abs=1e-9)
        assert np.ptp(split) > 0  # the strengths really differ: not one number copied five times
