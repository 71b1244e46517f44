"""configs/ablations/*_v2.yaml, issue 19's studies: each loads, and keeps the protocol it declares."""

import re
from collections import defaultdict
from pathlib import Path

import pytest

ABLATIONS = Path(__file__).resolve().parents[1] / "configs" / "ablations"
STUDIES = sorted(p for p in ABLATIONS.glob("*_v2.yaml") if p.name != "base_v2.yaml")


from serpentir.strict_yaml import load_yaml_file


def load_study(path):
    from serpentir_lab.ablate.study import load_study as load

    return load(path)


def test_base_has_no_duplicate_or_stray_keys():
    base = load_yaml_file(ABLATIONS / "base_v2.yaml")  # refuses a key given twice
    assert base["model"] == {"name": "serpent-t", "kwargs": {}} and base["steps"] >= 4000
    assert 64 <= base["data"]["crop_size"] <= 96


def test_there_are_the_three_studies_and_the_sweep():
    names = {p.stem for p in STUDIES}
    assert {"mixer_swap_blur_v2", "mixer_swap_shake_v2", "directions_blur_v2", "directions_shake_v2",
            "patch_width_v2", "lr_sweep_v2"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_keeps_the_protocol(path):
    header = path.read_text().split("\nstudy:")[0]
    assert re.search(r"Cost: about [\d.]+ thread-hours?", header)
    study = load_study(path)
    arms = defaultdict(set)
    for v in study.variants:
        arms[re.sub(r"-(s\d|lr[\de.-]+)$", "", v.name)].add(v.config.seed)
        if v.config.model.name in ("nafnet-t", "unet-t", "swinir-t", "restormer-t"):
            assert v.config.model.kwargs.get("head_init") == "identity"  # equal starts
    assert len({v.config.steps for v in study.variants}) == 1  # the same budget for every variant
    assert len({v.config.time_budget_min for v in study.variants}) == 1  # and the same minutes, where minutes bound it
    if path.stem.startswith(("lr_sweep", "bf16_")):  # a study that decides a setting
        assert study.test_dir.name == "val" and len(arms) >= 2  # decided on validation photos, never the test ones
    if path.stem.startswith("bf16_"):  # a change of numerics against float32: seeds, as a study's arms have
        assert {v.config.amp for v in study.variants} == {"none", "bf16"}
        assert all(len(seeds) >= 3 for seeds in arms.values()), dict(arms)
    elif path.stem.startswith("lr_sweep"):
        rates = defaultdict(set)
        for v in study.variants:
            rates[v.config.model.name].add(v.config.optim.lr)
        assert all(len(r) >= 3 for r in rates.values()), dict(rates)  # 3, and one more where the best was the edge
    else:
        assert study.test_dir.name == "test" and study.test_crop == 512 and study.variants[0].config.steps >= 4000
        sweep = {"serpent-t": 2e-3, "serpent-t-conv": 2e-3, "nafnet-t": 4e-3, "unet-t": 5e-4,  # docs/ablations/lr_sweep
                 "restormer-t": 2e-3, "swinir-t": 5e-4}  # docs/ablations/lr_sweep_onpar_time
        # study 1 ran when 2e-3, the top of the first range, was nafnet-t's best; its files say so in their header
        before = {"nafnet-t": 2e-3} if "rate before the sweep's 4e-3 arm" in header else {}
        assert all(v.config.optim.lr in (sweep[v.config.model.name], before.get(v.config.model.name))
                   for v in study.variants)
        assert all(len(seeds) >= 3 for seeds in arms.values()), dict(arms)
    if "shake" in path.stem:
        assert {v.config.task.name for v in study.variants} == {"motion_deblur"}
        assert all(v.config.task.params["kernel_size"] >= 31 for v in study.variants)
