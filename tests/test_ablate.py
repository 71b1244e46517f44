"""`serpentir ablate`: a tiny study trained, scored, reported, resumed and shared, on real photos."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest
import torch
import yaml
from skimage.metrics import peak_signal_noise_ratio

from serpentir.checkpoint import load_checkpoint, read_metadata
from serpentir.cli import main
from serpentir.data import sample_images_dir
from serpentir.image_io import list_images
from serpentir.infer import restore_tensor
from serpentir.models import create_model
from serpentir.train import train
from serpentir_lab.ablate import load_study, run_study
from serpentir_lab.ablate.arms import arm_of
from serpentir_lab.ablate.arms_report import ARM_COLUMNS, BAND_COLUMNS
from serpentir_lab.ablate.report import CSV_COLUMNS
from serpentir_lab.bench import count_flops
from serpentir_lab.release.bundle import validation_items
from serpentir_lab.stats import PairedDifference, bootstrap_interval, verdict

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Training photos, and two small held-out crops so scoring whole photos stays fast."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    (root / "val").mkdir()
    for path in list_images(sample_images_dir() / "val")[:2]:
        Image.open(path).convert("RGB").crop((0, 0, 64, 48)).save(root / "val" / f"{path.stem}.png")
    return sample_images_dir() / "train", root / "val"


@pytest.fixture(scope="module")
def test_photos(tmp_path_factory):
    """Six small test photos (64x48 crops of the held-out photos' centres and far corners), apart from val."""
    from PIL import Image

    root = tmp_path_factory.mktemp("test_photos")
    for path in list_images(sample_images_dir() / "val"):
        image = Image.open(path).convert("RGB")
        for where, (left, top) in {"centre": ((image.width - 64) // 2, (image.height - 48) // 2),
                                   "corner": (image.width - 64, image.height - 48)}.items():
            image.crop((left, top, left + 64, top + 48)).save(root / f"{path.stem}-{where}.png")
    return root


def write_study(folder, photos, variants: dict, **extra) -> str:
    train_dir, val_dir = photos
    base = {"model": {"name": "serpent-t", "kwargs": {"embed_dim": 8}}, "task": {"name": "denoise"},  # narrow: fast
            "data": {"train_dir": str(train_dir), "val_dir": str(val_dir), "crop_size": 32, "val_crop_size": 32,
                     "batch_size": 2, "num_workers": 0, "cache_mb": 0},
            "steps": 2, "val_every": 1, "ckpt_every": 1, "log_every": 1, "lpips_at_end": False,
            "tensorboard": False, "progress": False}
    (folder / "base.yaml").write_text(yaml.safe_dump(base))
    study = {"study": "tiny", "question": "Does it run?", "base": "base.yaml", "variants": variants, **extra}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return str(path)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_study_report_matches_the_trained_models(tmp_path, photos):
    study = load_study(write_study(tmp_path, photos, {"d2n4": ["model.kwargs.directions=2", "model.kwargs.d_state=4"],
                                                       "base": []}))
    results = run_study(study, tmp_path / "out", latency_size=None, progress=False)
    rows = read_rows(tmp_path / "out" / "ablations.csv")
    assert tuple(rows[0]) == CSV_COLUMNS
    by_name = {r[0]: dict(zip(CSV_COLUMNS, r)) for r in rows[1:]}
    assert set(by_name) >= {"d2n4", "base", "degraded input"}
    assert (by_name["d2n4"]["directions"], by_name["d2n4"]["d_state"]) == ("2", "4")
    assert (by_name["base"]["directions"], by_name["base"]["d_state"], by_name["base"]["order"]) == ("4", "8", "diagonal")
    for name, kwargs in (("d2n4", {"directions": 2, "d_state": 4}), ("base", {})):
        counted = sum(p.numel() for p in create_model("serpent-t", embed_dim=8, **kwargs).parameters())
        assert int(by_name[name]["params"]) == counted
        assert float(by_name[name]["gflops_512"]) > 0 and by_name[name]["latency_512_ms"] == ""
    for r in results:  # every variant trained to the full step count, in its own folder
        assert read_metadata(r.run_dir / "checkpoints" / "last.safetensors")["step"] == 2
    assert len({r.run_dir for r in results}) == 2
    # the reported PSNR is the trained model's on the held-out photos, by skimage's own PSNR
    base = next(r for r in results if r.variant == "base")
    model, task, _ = load_checkpoint(base.run_dir / "checkpoints" / "last.safetensors")
    psnrs = []
    with torch.no_grad():
        for _, degraded, clean, _ in validation_items(task, photos[1], 0):
            restored = restore_tensor(model, degraded[None])[0].clamp(0, 1)
            psnrs.append(peak_signal_noise_ratio(clean.numpy(), restored.numpy(), data_range=1.0))
    assert float(by_name["base"]["psnr"]) == pytest.approx(sum(psnrs) / len(psnrs), abs=2e-3)
    text = (tmp_path / "out" / "ablations.md").read_text()
    assert "Does it run?" in text and "`model.kwargs.directions=2`" in text
    for name in ("quality_vs_gflops.png", "learning_curves.png", "psnr_vs_directions.png", "psnr_vs_d_state.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == PNG_MAGIC
    assert not (tmp_path / "out" / "psnr_vs_patch_size.png").exists()  # a knob that never varies gets no plot


def test_rerun_neither_retrains_nor_rescores_and_a_stopped_variant_resumes(tmp_path, photos):
    path = write_study(tmp_path, photos, {"a": [], "b": ["model.kwargs.d_state=4"]})
    study = load_study(path)
    run_b = study.run_dir(study.variants[1], tmp_path / "out" / "runs")
    stopped = study.variants[1].config
    stopped.out_dir = str(run_b)
    train(stopped, stop_after=1)  # as if the study had been interrupted inside variant b
    assert read_metadata(run_b / "checkpoints" / "last.safetensors")["step"] == 1

    run_study(load_study(path), tmp_path / "out", latency_size=None, progress=False)
    assert read_metadata(run_b / "checkpoints" / "last.safetensors")["step"] == 2
    logs = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "runs").glob("*/*.csv")}
    caches = {p: p.read_text() for p in (tmp_path / "out" / "runs").glob("*/ablate_scores.json")}
    assert len(caches) == 2

    os.utime(next(iter(caches)), (0, 0))  # any rewrite would show in the mtime as well as the contents
    run_study(load_study(path), tmp_path / "out", latency_size=None, progress=False)
    assert {p: p.stat().st_mtime_ns for p in logs} == logs
    assert {p: p.read_text() for p in caches} == caches
    assert next(iter(caches)).stat().st_mtime == 0

    # the cost is not taken from the cache: a count saved under another formula is counted again
    for cache in caches:
        saved = json.loads(cache.read_text())
        saved["row"]["flops"], saved["row"]["macs"] = {"512": 1}, {"512": 1}
        cache.write_text(json.dumps(saved))
    run_study(load_study(path), tmp_path / "out", latency_size=None, progress=False)
    rows = {r[0]: dict(zip(CSV_COLUMNS, r)) for r in read_rows(tmp_path / "out" / "ablations.csv")[1:]}
    counted = count_flops(create_model("serpent-t", embed_dim=8, d_state=4), (1, 3, 512, 512))
    assert float(rows["b"]["gmacs_512"]) == pytest.approx(counted.macs / 1e9, rel=1e-5)
    assert float(rows["b"]["gflops_512"]) == pytest.approx(2 * counted.macs / 1e9, rel=1e-5)
    assert {p: p.stat().st_mtime_ns for p in logs} == logs  # and nothing was trained


def test_a_run_whose_time_budget_is_spent_is_not_set_up_again(tmp_path, photos, monkeypatch):
    import serpentir.train as training
    from serpentir_lab.ablate.runner import train_variant

    study = load_study(write_study(tmp_path, photos, {"a": ["time_budget_min=0.0005", "steps=50"]}))
    variant = study.variants[0]
    run = study.run_dir(variant, tmp_path / "runs")
    train_variant(variant, run, progress=False)  # 0.03 s of stepping: spent after a step or two, long before step 50
    step = read_metadata(run / "checkpoints" / "last.safetensors")["step"]
    assert 1 <= step < 50

    calls = []
    monkeypatch.setattr(training, "train", lambda config, **kw: calls.append(config))
    train_variant(load_study(study.path).variants[0], run, progress=False)
    assert calls == []  # a spent budget: nothing built, nothing loaded
    more = load_study(write_study(tmp_path, photos, {"a": ["time_budget_min=5", "steps=50"]})).variants[0]
    train_variant(more, run, progress=False)
    assert len(calls) == 1  # a larger budget goes on training


def test_a_time_budget_study_reports_its_minutes_and_each_variants_steps(tmp_path, photos):
    path = write_study(tmp_path, photos, {"a": ["optim.warmup_steps=1"], "b": ["optim.warmup_steps=2"]},
                       set=["time_budget_min=0.0005", "steps=50"])
    study = load_study(path)
    run_study(study, tmp_path / "out", latency_size=None, progress=False)
    md = (tmp_path / "out" / "ablations.md").read_text()
    assert "0.0005 minutes of stepping by the trainer's own clock (at most 50 steps" in md
    assert "each variant's own warm-up" in md and "50 steps, " not in md
    rows = {r[0]: dict(zip(CSV_COLUMNS, r)) for r in read_rows(tmp_path / "out" / "ablations.csv")[1:]}
    for variant in study.variants:
        name = variant.name
        step = read_metadata(study.run_dir(variant, tmp_path / "out" / "runs") / "checkpoints" / "last.safetensors")["step"]
        assert 1 <= step < 50 and int(rows[name]["steps"]) == step
        assert f"| {name} | serpent-t |" in md and f"| {step} |" in md


def test_identical_variants_share_one_run_folder(tmp_path, photos):
    # log_every changes how a run reports, not what it learns: the same run folder
    study = load_study(write_study(tmp_path, photos, {"x": [], "y": ["log_every=5"], "z": ["optim.lr=2e-3"]}))
    runs = [study.run_dir(v, tmp_path / "runs") for v in study.variants]
    assert runs[0] == runs[1] != runs[2]
    assert runs[0].name.startswith("serpent-t-")


@pytest.mark.parametrize("change, message", [
    ({"base": "missing.yaml"}, "base config not found"),
    ({"colour": 1}, "unknown key(s) colour"),
    ({"variants": {"Bad Name": []}}, "variant name 'Bad Name'"),
    ({"variants": {"a": ["optim.nonsense=1"]}}, "variant a"),
    ({"variants": {"a": "steps=3"}}, "expected a list of key=value overrides"),
    ({"variants": {"a": ["model.kwargs.directons=2"]}}, "variant a: model serpent-t"),
    ({"variants": {"a": ["model.name=no-such-net"]}}, "variant a"),
    ({"test_crop": "big"}, "test_crop must be a positive whole number"),
    ({"test_crop": 0}, "test_crop must be a positive whole number"),
    ({"test_dir": "x", "val_dir": "y"}, "not both"),
])
def test_bad_study_files_are_one_line_errors(tmp_path, photos, capsys, change, message):
    path = write_study(tmp_path, photos, {"a": []})
    data = yaml.safe_load(open(path))
    data.update(change)
    open(path, "w").write(yaml.safe_dump(data))
    assert main(["ablate", path, "--out", str(tmp_path / "out"), "--no-latency"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "study.yaml" in err
    assert not (tmp_path / "out").exists()


def test_a_variant_named_twice_is_refused(tmp_path, photos, capsys):
    path = write_study(tmp_path, photos, {"a": []})
    text = open(path).read().replace("  a: []", "  a: []\n  a: [steps=3]")
    open(path, "w").write(text)
    assert main(["ablate", path, "--out", str(tmp_path / "out"), "--no-latency"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'a' is given twice" in err


def test_cli_runs_one_variant_and_no_train_reports_only_what_exists(tmp_path, photos, capsys):
    path = write_study(tmp_path, photos, {"a": [], "b": ["model.kwargs.d_state=4"]})
    out = tmp_path / "out"
    assert main(["ablate", path, "--out", str(out), "--only", "b", "--no-latency"]) == 0
    assert [r[0] for r in read_rows(out / "ablations.csv")[1:3]] == ["b", "degraded input"]
    assert main(["ablate", path, "--out", str(out), "--no-train", "--no-latency"]) == 0
    assert [r[0] for r in read_rows(out / "ablations.csv")][1] == "b"  # a was never trained: not reported
    assert main(["ablate", path, "--out", str(out), "--only", "c", "--no-latency"]) == 2
    assert "no variant 'c'" in capsys.readouterr().err


def test_no_train_leaves_out_an_interrupted_run_until_it_is_finished(tmp_path, photos, capsys):
    study = load_study(write_study(tmp_path, photos, {"a": [], "b": ["model.kwargs.d_state=4"]}))
    out, runs = tmp_path / "out", tmp_path / "runs"
    run_study(study, out, runs_dir=runs, latency_size=None, progress=False)
    b_dir = study.run_dir(study.variants[1], runs) / "checkpoints"
    for suffix in ("safetensors", "state.pt"):  # b as a run stopped after its first step leaves it
        shutil.copyfile(b_dir / f"step_0000001.{suffix}", b_dir / f"last.{suffix}")
    assert read_metadata(b_dir / "last.safetensors")["step"] == 1
    capsys.readouterr()
    assert [r.variant for r in run_study(study, out, runs_dir=runs, latency_size=None, progress=False,
                                         train=False)] == ["a"]
    assert "b: not reported, its run stopped at step 1 of 2" in capsys.readouterr().err
    assert [r[0] for r in read_rows(out / "ablations.csv")][1:3] == ["a", "degraded input"]
    results = run_study(study, out, runs_dir=runs, latency_size=None, progress=False)  # resumes b to the end
    assert [r.variant for r in results] == ["a", "b"]
    assert read_metadata(b_dir / "last.safetensors")["step"] == 2


SEEDED = {"a-s0": ["seed=0"], "a-s1": ["seed=1"],
          "b-s0": ["model.kwargs.d_state=4", "seed=0"], "b-s1": ["model.kwargs.d_state=4", "seed=1"]}


def per_photo(run_dir, metric="psnr", band=None) -> dict:
    saved = json.loads((run_dir / "ablate_scores.json").read_text())["row"]["per_photo"]
    return {p["photo"]: p["band_psnr"][band] if band is not None else p[metric] for p in saved}


def seed_mean(runs, metric="psnr", band=None) -> dict:
    rows = [per_photo(r, metric, band) for r in runs]
    return {p: sum(r[p] for r in rows) / len(rows) for p in rows[0]}


def test_arms_of_seeds_are_compared_photo_by_photo_with_intervals(tmp_path, photos, test_photos):
    path = write_study(tmp_path, photos, SEEDED, test_dir=str(test_photos), test_crop=32)
    study = load_study(path)
    assert (study.test_dir, study.test_crop, study.tune_dir) == (test_photos, 32, photos[1])
    out = tmp_path / "out"
    results = run_study(study, out, latency_size=None, progress=False)
    runs = {r.variant: r.run_dir for r in results}
    assert len(set(runs.values())) == 4  # two seeds are two trainings

    # per-photo PSNR in the cache is the model's on the 32-px centre crop of each test photo, by skimage
    model, task, _ = load_checkpoint(runs["b-s1"] / "checkpoints" / "last.safetensors")
    items = validation_items(task, test_photos, 0, crop_size=32)
    assert len(items) == 6 and all(clean.shape[-2:] == (32, 32) for _, _, clean, _ in items)
    with torch.no_grad():
        for name, degraded, clean, _ in items:
            restored = restore_tensor(model, degraded[None])[0].clamp(0, 1)
            expected = peak_signal_noise_ratio(clean.numpy(), restored.numpy(), data_range=1.0)
            assert per_photo(runs["b-s1"])[name] == pytest.approx(expected, abs=2e-3)
    for run in runs.values():  # Parseval, per photo: the bands' errors add up to the whole error
        for name, value in per_photo(run).items():
            bands = [per_photo(run, band=b)[name] for b in range(3)]
            assert sum(10 ** (-b / 10) for b in bands) == pytest.approx(10 ** (-value / 10), rel=1e-4)

    variants = {r[0]: dict(zip(CSV_COLUMNS, r)) for r in read_rows(out / "ablations.csv")[1:]}
    rows = read_rows(out / "ablations_arms.csv")
    assert tuple(rows[0]) == ARM_COLUMNS
    arms = {r[0]: dict(zip(ARM_COLUMNS, r)) for r in rows[1:]}
    assert list(arms) == ["a", "b"]
    a, b = arms["a"], arms["b"]
    assert (a["seeds"], a["variants"], a["verdict"], a["diff_db"], b["reference"]) == ("0 1", "a-s0 a-s1", "reference", "", "a")
    seeds = [float(variants[v]["psnr"]) for v in ("b-s0", "b-s1")]
    assert float(b["psnr_mean"]) == pytest.approx(sum(seeds) / 2, abs=1e-4)
    assert (float(b["psnr_min"]), float(b["psnr_max"])) == pytest.approx((min(seeds), max(seeds)), abs=1e-4)
    # the paired difference, by hand: per photo, b's mean over seeds minus a's, then the mean and its interval
    mine, ref = seed_mean([runs["b-s0"], runs["b-s1"]]), seed_mean([runs["a-s0"], runs["a-s1"]])
    diffs = [mine[p] - ref[p] for p in ref]
    low, high = bootstrap_interval(diffs)
    assert float(b["diff_db"]) == pytest.approx(sum(diffs) / len(diffs), abs=1e-5)
    assert (float(b["ci_low"]), float(b["ci_high"])) == pytest.approx((low, high), abs=1e-5)
    assert low <= float(b["diff_db"]) <= high and b["verdict"] == verdict(low, high) and int(b["photos"]) == 6
    # the cost columns: MACs from the bench's counter, FLOPs beside them
    counted = count_flops(create_model("serpent-t", embed_dim=8, d_state=4), (1, 3, 512, 512))
    assert float(b["gmacs_512"]) == pytest.approx(counted.macs / 1e9, rel=1e-5)
    assert float(variants["b-s0"]["gmacs_512"]) == pytest.approx(counted.macs / 1e9, rel=1e-5)
    assert float(variants["b-s0"]["gflops_512"]) == pytest.approx(counted.flops / 1e9, rel=1e-5)

    bands = {(r[0], r[1]): dict(zip(BAND_COLUMNS, r)) for r in read_rows(out / "ablations_bands.csv")[1:]}
    assert read_rows(out / "ablations_bands.csv")[0] == list(BAND_COLUMNS)
    assert {k[1] for k in bands} == {"low", "mid", "high"} and ("degraded input", "high") in bands
    assert bands[("b", "mid")]["cycles_per_pixel"] == "[1/8, 1/4)" and bands[("a", "low")]["verdict"] == "reference"
    fine = [seed_mean([runs["b-s0"], runs["b-s1"]], band=2)[p] - seed_mean([runs["a-s0"], runs["a-s1"]], band=2)[p]
            for p in ref]
    assert float(bands[("b", "high")]["diff_db"]) == pytest.approx(sum(fine) / len(fine), abs=1e-5)
    assert (float(bands[("b", "high")]["ci_low"]), float(bands[("b", "high")]["ci_high"])) == pytest.approx(
        bootstrap_interval(fine), abs=1e-5)

    text = (out / "ablations.md").read_text()
    assert "## Arms against `a`" in text and "## Error by frequency band" in text and "## Seed by seed" in text
    cell = PairedDifference(sum(diffs) / len(diffs), low, high, 6).describe(2, "dB")  # its wording: test_stats.py
    assert cell.endswith(f"] dB: {verdict(low, high)}")
    assert "| b | 0 1 | serpent-t |" in text and cell in text
    assert "| a | 0 1 |" in text and "| reference |" in text
    assert "| arm | seed 0 | seed 1 |" in text
    assert "GMACs 512" in text and "multiply-accumulates" in text
    assert f"chosen on the validation split `{photos[1]}`" in text and "not the test photos" in text
    assert "centre 32-px squares of 6 test photos" in text
    assert (out / "arms_psnr.png").read_bytes()[:8] == PNG_MAGIC

    # a cache written before per-photo scores were kept is measured again, not misread
    cache = runs["a-s0"] / "ablate_scores.json"
    saved = json.loads(cache.read_text())
    before = per_photo(runs["a-s0"])
    del saved["key"]["scores"]
    saved["row"].pop("per_photo")
    cache.write_text(json.dumps(saved))
    run_study(load_study(path), out, latency_size=None, progress=False)
    again = json.loads(cache.read_text())
    assert again["key"]["scores"] == 2 and per_photo(runs["a-s0"]) == pytest.approx(before, abs=1e-6)


def test_a_test_photo_smaller_than_test_crop_is_a_one_line_error(tmp_path, photos, test_photos, capsys):
    path = write_study(tmp_path, photos, {"a": []}, test_dir=str(test_photos), test_crop=56)
    assert main(["ablate", path, "--out", str(tmp_path / "out"), "--no-latency"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "test_crop 56" in err and "64x48" in err and str(test_photos) in err and ".png" in err
    assert not (tmp_path / "out").exists()  # refused before any training


def test_test_dir_defaults_and_the_deprecated_val_dir(tmp_path, photos, test_photos):
    study = load_study(write_study(tmp_path, photos, {"a": []}))
    assert (study.test_dir, study.tune_dir, study.test_crop, study.notes) == (photos[1], photos[1], None, ())
    study = load_study(write_study(tmp_path, photos, {"a": []}, val_dir=str(test_photos)))
    assert study.test_dir == test_photos and study.tune_dir == photos[1]
    assert "deprecated" in study.notes[0]
    for name in ("mixer_swap_blur_v2", "directions_shake_v2", "patch_width_v2"):
        v2 = load_study(f"configs/ablations/{name}.yaml")
        assert (str(v2.test_dir), v2.test_crop, str(v2.tune_dir), v2.notes) == (
            "runs/corpus19/test", 512, "runs/corpus19/val", ())
    sweep = load_study("configs/ablations/lr_sweep_v2.yaml")  # a choice: made on the validation split
    assert str(sweep.test_dir) == str(sweep.tune_dir) == "runs/corpus19/val"


def test_seed_suffixes_name_arms():
    assert arm_of("serpent-t-s2") == ("serpent-t", 2) and arm_of("d4-cross-s10") == ("d4-cross", 10)
    assert arm_of("serpent-t-lr5e-4") == ("serpent-t-lr5e-4", None) and arm_of("seed1") == ("seed1", None)
