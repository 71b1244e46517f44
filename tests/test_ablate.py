"""`serpentir ablate`: a tiny study trained, scored, reported, resumed and shared, on real photos."""

from __future__ import annotations

import csv
import os

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
from serpentir_lab.ablate.report import CSV_COLUMNS
from serpentir_lab.release.bundle import validation_items

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
