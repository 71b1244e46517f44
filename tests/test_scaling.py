"""The whole-against-tiled scaling benchmark (python -m serpentir_lab.scaling) on small crops of a real photo."""

from __future__ import annotations

import csv

import pytest
import torch

from real_photos import photo
from serpentir import metrics
from serpentir.checkpoint import build_model, build_task, save_checkpoint
from serpentir.errors import UserError
from serpentir.image_io import save_image
from serpentir_lab.scaling import COLUMNS, GAIN_COLUMNS, Photo, held_out_photos, run_scaling
from serpentir_lab.stats import bootstrap_interval


def _checkpoint(folder, model_name: str, task_name: str):
    torch.manual_seed(0)
    task = build_task(task_name)
    model = build_model(model_name, {}, channels=3, extra_channels=task.extra_channels)
    return save_checkpoint(folder / f"{model_name}-{task_name}.safetensors", model=model, task=task, step=0), model, task


def _photo(folder, name: str, width: int, height: int, held_out: bool = True) -> Photo:
    path = folder / f"{name}.png"
    save_image(photo("astronaut", size=(height, width)), path)
    return Photo(name, path, width, height, held_out)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_whole_is_one_forward_pass_tiled_is_not_and_finished_cases_are_kept(tmp_path):
    checkpoint, model, task = _checkpoint(tmp_path, "serpent-t", "denoise")
    photos = [_photo(tmp_path, "small", 60, 60), _photo(tmp_path, "big", 100, 80)]
    out = tmp_path / "out"
    run_scaling({"serpent": checkpoint}, photos, [(96, 64)], out, tiles=(32,), overlap=8, progress=False)

    with open(out / "scaling.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == COLUMNS
    summary = {(r["mode"], r["size"]): r for r in _rows(out / "scaling.csv")}
    assert set(summary) == {("whole", "96x64"), ("tiled-32", "96x64"), ("input", "96x64")}
    per_photo = _rows(out / "scaling_per_photo.csv")
    assert {r["photo"] for r in per_photo} == {"big"}  # the 60x60 photo is too small
    assert "Too small for a size (skipped): 96x64: small" in (out / "scaling.md").read_text()

    # whole: the model's one forward pass over the centre crop, degraded with the photo's seed (1)
    clean = photo("astronaut", size=(80, 100))[:, 8:72, 2:98]
    with torch.inference_mode():
        restored = model.eval()(task(clean, 1)[None]).clamp(0, 1)
    expected = metrics.psnr(restored, clean[None]).item()
    whole = next(r for r in per_photo if r["mode"] == "whole" and r["size"] == "96x64")
    assert float(whole["psnr"]) == pytest.approx(expected, abs=1e-3)
    # the degraded crop itself is reported for reference, with the same seed
    degraded_row = next(r for r in per_photo if r["mode"] == "input")
    assert float(degraded_row["psnr"]) == pytest.approx(metrics.psnr(task(clean, 1)[None].clamp(0, 1), clean[None]).item(),
                                                        abs=1e-3)
    per_photo = [r for r in per_photo if r["mode"] != "input"]
    # tiled: 32-px tiles cannot see the whole map, so a network with a global receptive field differs
    assert float(summary[("tiled-32", "96x64")]["psnr"]) != pytest.approx(float(summary[("whole", "96x64")]["psnr"]),
                                                                          abs=1e-4)
    assert all(float(r["seconds"]) > 0 and float(r["peak_mb"]) > 50 for r in per_photo)

    before = (out / "scaling_per_photo.csv").read_text()
    run_scaling({"serpent": checkpoint}, photos, [(96, 64)], out, tiles=(32,), overlap=8, progress=False)
    assert (out / "scaling_per_photo.csv").read_text() == before  # nothing measured twice


def test_a_photo_seen_in_training_stands_in_only_where_no_held_out_photo_fits(tmp_path):
    checkpoint, _, _ = _checkpoint(tmp_path, "serpent-t", "denoise")
    photos = [_photo(tmp_path, "held", 64, 64), _photo(tmp_path, "seen", 128, 96, held_out=False)]
    out = tmp_path / "out"
    run_scaling({"serpent": checkpoint}, photos, [(64, 64), (96, 96)], out, modes=("whole",), progress=False)
    used = {(r["size"], r["photo"], r["held_out"]) for r in _rows(out / "scaling_per_photo.csv") if r["mode"] == "whole"}
    assert used == {("64x64", "held", "True"), ("96x96", "seen", "False")}
    assert "Not held out: seen" in (out / "scaling.md").read_text()


def test_models_of_different_tasks_are_refused(tmp_path):
    a, _, _ = _checkpoint(tmp_path, "serpent-t", "denoise")
    b, _, _ = _checkpoint(tmp_path, "nafnet-t", "gaussian_deblur")
    with pytest.raises(UserError, match="compare models of one task"):
        run_scaling({"a": a, "b": b}, [], [(64, 64)], tmp_path / "out", progress=False)


def test_each_tile_size_is_a_mode_and_whole_minus_tiled_is_paired_by_photo(tmp_path):
    checkpoint, _, _ = _checkpoint(tmp_path, "serpent-t", "denoise")
    photos = [_photo(tmp_path, f"p{i}", 72 + 8 * i, 64) for i in range(3)]
    out = tmp_path / "out"
    run_scaling({"serpent": checkpoint}, photos, [(64, 64)], out, tiles=(24, 40), overlap=4, progress=False)
    rows = _rows(out / "scaling_per_photo.csv")
    assert {r["mode"] for r in rows} == {"whole", "tiled-24", "tiled-40", "input"}
    psnr = {(r["mode"], r["photo"]): float(r["psnr"]) for r in rows}

    with open(out / "scaling_whole_vs_tiled.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == GAIN_COLUMNS
    gains = {r["tiles"]: r for r in _rows(out / "scaling_whole_vs_tiled.csv")}
    assert set(gains) == {"tiled-24", "tiled-40"}
    for tiles, row in gains.items():
        diffs = [psnr[("whole", p.name)] - psnr[(tiles, p.name)] for p in photos]  # from the per-photo rows
        low, high = bootstrap_interval(diffs)
        assert int(row["photos"]) == 3
        assert float(row["diff_db"]) == pytest.approx(sum(diffs) / 3, abs=1e-4)
        assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx((low, high), abs=1e-4)
        assert row["verdict"] == ("no difference measured" if low <= 0 <= high else "better" if low > 0 else "worse")
    report = (out / "scaling.md").read_text()
    assert "| serpent | 64x64 | tiled-24 | 3 |" in report and "24-px or 40-px tiles" in report


def test_the_test_split_is_read_with_val_and_the_train_split_is_refused(tmp_path):
    corpus = tmp_path / "corpus"
    names = {"val": "v", "test": "t", "train": "r"}
    lines = ["name,split,package,source,width,height,source_width,source_height,source_sha256,sha256"]
    for split, name in names.items():
        (corpus / split).mkdir(parents=True)
        save_image(photo("astronaut", size=(40, 48)), corpus / split / f"{name}.png")
        lines.append(f"{name},{split},pkg,/nonexistent/{name}.png,48,40,48,40,x,y")
    (corpus / "manifest.csv").write_text("\n".join(lines) + "\n")
    assert [p.name for p in held_out_photos(corpus)] == ["v"]
    both = held_out_photos(corpus, ("test", "val"))
    assert [(p.name, p.path, p.width, p.height) for p in both] == [("v", corpus / "val" / "v.png", 48, 40),
                                                                   ("t", corpus / "test" / "t.png", 48, 40)]
    with pytest.raises(UserError, match="not held out"):
        held_out_photos(corpus, ("train",))
