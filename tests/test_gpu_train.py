"""benchmarks/gpu/train_general.py on the CPU: the probe, the planned run and what comes back."""

import csv
import json
from pathlib import Path

import pytest
from conftest import loaded_script

from serpentir.checkpoint import load_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "train_general.py"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def driver():
    with loaded_script(SCRIPT) as module:
        yield module


def test_the_plan_fills_the_budget(driver):
    assert driver.plan_steps(0.5, 300) == 600 and driver.plan_steps(10.0, 30) == 10  # never fewer than 10


def test_smoke_run_brings_back_weights_logs_and_the_plan(driver, tmp_path):
    assert driver.main(["--device", "cpu", "--smoke", "--out", str(tmp_path), "--minutes", "0.15",
                        "--probe-steps", "5"]) == 0
    names = {p.name for p in tmp_path.iterdir()}  # the run and probe folders are gone: at most 8 files come back
    assert names == {"config.yaml", "last.safetensors", "plan.json", "train_log.csv", "val_log.csv"}
    plan = json.loads((tmp_path / "plan.json").read_text())
    model, task, meta = load_checkpoint(tmp_path / "last.safetensors")
    assert task.name == "general" and meta["step"] == plan["trained_steps"] >= 10
    assert plan["steps"] >= plan["trained_steps"] and plan["seconds_per_step"] > 0
    with open(tmp_path / "train_log.csv") as f:
        assert int(list(csv.DictReader(f))[-1]["step"]) == plan["trained_steps"]


def test_without_a_gpu_nothing_is_trained(driver, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert driver.main(["--out", str(tmp_path / "out")]) == 2 and not (tmp_path / "out").exists()
