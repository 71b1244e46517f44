"""The blind-model card: per-strength scores on a corpus' held-out photos and honest floors, checked
with a model whose output is exactly its input (zeroed head on the global residual)."""

import json
import math

import pytest
import torch
from PIL import Image

from real_photos import photo_array
from serpentir.checkpoint import build_model, build_task, load_checkpoint, save_checkpoint
from serpentir.image_io import load_image
from serpentir.metrics import psnr
from serpentir_lab import corpus
from serpentir_lab.release.blind_card import bundle_blind_run
from serpentir_lab.release.blind_validation import STRENGTHS, evaluate_strengths, floors

pytestmark = pytest.mark.usefixtures("one_thread")


def _identity_model():
    model = build_model("serpent-t", {}, channels=3)
    with torch.no_grad():
        for p in model.head.parameters():
            p.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("blind")
    mate = root / "mate"
    mate.mkdir()
    for i, name in enumerate(corpus.MATE_PHOTOS):
        Image.fromarray(photo_array("chelsea", size=(48, 64), top=60 + 5 * i, left=120)).save(mate / f"{name}.png")
    out = root / "corpus"
    corpus.build_corpus(out, photos=corpus.mate_photos(mate), val_names=("mate-Storm", "mate-LadyBird"), progress=False)
    return out


def test_identity_model_scores_and_floors_are_what_the_numbers_say(tiny_corpus):
    task = build_task("general")
    photos = [(p.stem, load_image(p, channels=3)) for p in sorted((tiny_corpus / "val").iterdir())]
    rows = evaluate_strengths(_identity_model(), task, photos, progress=False)
    assert [r.label for r in rows[:-1]] == [label for label, _, _ in STRENGTHS["general"]]
    for row in rows[1:]:
        assert all(abs(g) < 1e-4 for g in row.gains.values()), row.label  # output == input
    # the colour shift is the degradation's own: mean(noisy, clipped) - mean(clean), recomputed here
    noise = next(r for r in rows if r.label == "noise 25/255")
    name, clean = photos[0]
    degraded = task.apply(clean, {"noise": "gaussian", "noise_sigma": 25 / 255}, 1000)
    assert noise.colour_shift[0] == pytest.approx(((degraded - clean).mean(dim=(1, 2)) * 255).tolist(), abs=1e-3)
    sharp = rows[0]
    assert math.isinf(sharp.output["psnr"])
    lines = floors(rows, general=True)
    assert lines[0].startswith("- sharp photos >= 38 dB: met")
    assert any(line.startswith("- every blur strength improved by >= 1 dB (mean over photos): MISSED") for line in lines)


def test_bundle_blind_run_writes_weights_and_card(tiny_corpus, tmp_path):
    task = build_task("general")
    model = _identity_model()
    ckpt = save_checkpoint(tmp_path / "run" / "last.safetensors", model=model, task=task, step=5, ema_model=model,
                           config={"data": {"batch_size": 8, "crop_size": 128}})
    weights, card = bundle_blind_run(ckpt, tiny_corpus, train_started=0.0, train_ended=600.0, wall_time_s=600,
                                     out_dir=tmp_path / "weights", notes="A note.\n", progress=False)
    loaded, loaded_task, meta = load_checkpoint(weights)
    assert loaded_task.name == "general" and meta["step"] == 5
    x = torch.rand(1, 3, 32, 32)
    assert psnr(loaded(x).clamp(0, 1), x).item() > 60
    text = card.read_text()
    for needle in ("# general: serpent-t", "the EMA weights of step 5", "| sharp photo, no degradation | inf | inf |",
                   "Held out (whole photos, never cropped into training): mate-LadyBird, mate-Storm",
                   "Training: 1970-01-01 00:00 UTC to 1970-01-01 00:10 UTC, wall time 10.0 min",
                   "- sharp photos >= 38 dB: met", "colour cast under 0.5 levels", "A note.",
                   "batch 8, crops 128 px"):
        assert needle in text, needle


def _offset_model(offset: float):
    """The identity model with a constant added to every output pixel: worse than identity in every class."""
    model = _identity_model()
    bias = [p for name, p in model.head.named_parameters() if name.endswith("bias")][-1]  # the last linear's
    with torch.no_grad():
        bias.fill_(offset)
    return model


def test_a_worse_candidate_is_refused_and_forced_ones_are_marked(tiny_corpus, tmp_path):
    from serpentir.errors import UserError

    task = build_task("general")
    out = tmp_path / "weights"

    def bundle(model, step, **kwargs):
        ckpt = save_checkpoint(tmp_path / f"run{step}" / "last.safetensors", model=model, task=task, step=step,
                               ema_model=model, config={"data": {"batch_size": 8, "crop_size": 128}})
        return bundle_blind_run(ckpt, tiny_corpus, train_started=0.0, train_ended=600.0, wall_time_s=600,
                                out_dir=out, progress=False, **kwargs)

    weights, card = bundle(_offset_model(0.02), 5)  # nothing bundled yet: no gate, one history row
    assert "## History" in card.read_text() and "Against the model it replaces" not in card.read_text()
    before = weights.read_bytes(), card.read_text()
    with pytest.raises(UserError, match="not bundled, it is worse"):
        bundle(_offset_model(0.05), 6)
    assert (weights.read_bytes(), card.read_text()) == before  # nothing written
    weights, card = bundle(_identity_model(), 7)  # better everywhere: accepted, the table grows
    text = card.read_text()
    assert "WORSE" not in text and "not worse" in text
    history = text.split("## History", 1)[1]
    assert len([line for line in history.splitlines() if line.startswith("| 1970-") or line.startswith("| 20")]) == 2
    weights, card = bundle(_offset_model(0.05), 8, force=True)
    assert "WORSE" in card.read_text() and "Bundled although worse (--force)" in card.read_text()


def test_history_rows_of_a_task_without_some_classes():
    from serpentir_lab.release.regression_gate import CLASSES, history_row, history_table

    row = history_row("2026-12-06", "3000", 36.8, {"blur": 1.234})  # a deblurring model: no sharp or JPEG strengths
    assert row == "| 2026-12-06 | 3000 | 37 | - | +1.23 | - | - | - | - |" and len(CLASSES) == 5
    full = history_row("2026-12-04", "1500", 62, {"clean": 49.9, "blur": -0.11, "noise": 4.1, "jpeg": 0.07, "chain": 0.55,
                                                  "draws": 1.17})
    assert full == "| 2026-12-04 | 1500 | 62 | 49.90 | -0.11 | +4.10 | +0.07 | +0.55 | +1.17 |"
    old = "| 2026-12-04 | 500 | 5 | - | +0.16 | - | - | - |"  # a row written before the draws column
    lines = history_table([old, row]).splitlines()
    assert lines[4] == old + " - |" and lines[5] == row
    assert {line.count("|") for line in lines[2:]} == {row.count("|")}


def test_a_task_without_classes_is_judged_on_its_own_draws():
    from serpentir_lab.release.blind_validation import StrengthRow
    from serpentir_lab.release.regression_gate import regression_gate

    def draws(gain):
        row = StrengthRow("motion_deblur draws, one per photo", "draws")
        row.input, row.output = {"psnr": 24.0}, {"psnr": 24.0 + gain}
        return [row]

    better, worse = regression_gate(draws(0.39), draws(0.18)), regression_gate(draws(0.10), draws(0.18))
    assert better.passed and better.lines == ["- draws: 0.390 against 0.180 dB gain: not worse"]
    assert not worse.passed and "WORSE" in worse.lines[0]


def test_sharp_photos_are_held_to_the_floor_not_to_the_bundled_output():
    """A model that learns to sharpen touches sharp photos: 66 -> 45 dB is allowed (floor 38), a class
    that loses gain is not, and a sharp mean or worst photo under 38 dB is refused."""
    from serpentir_lab.release.blind_validation import StrengthRow
    from serpentir_lab.release.regression_gate import regression_gate

    def rows(sharp, blur_gain, worst=None):
        clean = StrengthRow("sharp photo, no degradation", "clean")
        clean.input, clean.output = {"psnr": float("inf")}, {"psnr": sharp}
        clean.output_psnr = {"a": sharp if worst is None else worst, "b": sharp}
        blur = StrengthRow("Gaussian blur sigma 1", "blur")
        blur.input, blur.output = {"psnr": 36.0}, {"psnr": 36.0 + blur_gain}
        return [clean, blur]

    bundled = rows(66.75, 0.0)
    assert regression_gate(rows(45.0, 0.8), bundled).passed
    lower_blur = regression_gate(rows(70.0, -0.1), bundled)
    assert not lower_blur.passed and any("blur" in line and "WORSE" in line for line in lower_blur.lines)
    assert not regression_gate(rows(37.5, 0.8), bundled).passed
    assert not regression_gate(rows(45.0, 0.8, worst=37.0), bundled).passed


def _blur_rows(gains_1, gains_2):
    """Two blur strengths over photos a-d with these per-photo gains (input 30 dB)."""
    from serpentir_lab.release.blind_validation import StrengthRow

    rows = []
    for label, gains in (("Gaussian blur sigma 1", gains_1), ("Gaussian blur sigma 2", gains_2)):
        row = StrengthRow(label, "blur")
        row.gains = dict(zip("abcd", gains))
        row.input, row.output = {"psnr": 30.0}, {"psnr": 30.0 + sum(gains) / len(gains)}
        rows.append(row)
    return rows


def test_the_gate_reads_each_class_photo_by_photo_with_an_interval():
    """Each class' line gives the paired per-photo difference: a fall shared by every photo is measured
    ('worse'), one that photos disagree on is not."""
    from serpentir_lab.release.regression_gate import class_photo_scores, regression_gate

    bundled = _blur_rows([0.10, 0.20, 0.30, 0.40], [0.0] * 4)
    assert class_photo_scores(bundled)["blur"] == {"a": 0.05, "b": 0.10, "c": 0.15, "d": 0.20}
    everywhere = regression_gate(_blur_rows([0.09, 0.19, 0.29, 0.39], [-0.01] * 4), bundled)  # every photo 0.01 lower
    assert not everywhere.passed and everywhere.lines[0].endswith("(per photo: -0.010 [-0.010, -0.010] dB: worse)")
    mixed = regression_gate(_blur_rows([0.50, 0.0, 0.50, 0.20], [0.0] * 4), bundled)  # per photo +0.2, -0.1, +0.1, -0.1
    assert mixed.passed and "(per photo: +0.025 [" in mixed.lines[0] and mixed.lines[0].endswith(": no difference measured)")


def test_a_fall_is_a_regression_when_the_card_shows_it_or_the_photos_agree_on_it():
    """Under 0.005 dB and not agreed on by the photos: no difference measured, passed. The same small fall on
    every photo, or a fall of 0.005 dB or more that photos disagree on: refused."""
    from serpentir_lab.release.regression_gate import regression_gate

    bundled = _blur_rows([0.10, 0.20, 0.30, 0.40], [0.0] * 4)
    tiny_mixed = _blur_rows([0.108, 0.192, 0.308, 0.384], [0.0] * 4)  # per photo +0.004, -0.004, +0.004, -0.008
    tiny_shared = _blur_rows([0.096, 0.196, 0.296, 0.396], [0.0] * 4)  # -0.002 on every photo
    visible_mixed = _blur_rows([0.30, 0.0, 0.30, 0.16], [0.0] * 4)  # +0.10, -0.10, 0, -0.12: mean -0.03
    assert regression_gate(tiny_mixed, bundled).passed
    assert not regression_gate(tiny_shared, bundled).passed
    verdict = regression_gate(visible_mixed, bundled)
    assert not verdict.passed and verdict.lines[0].startswith("- blur: 0.095 against 0.125 dB gain: WORSE")
    assert verdict.lines[0].endswith("no difference measured)")


def test_no_photo_newly_loses_more_than_a_tenth_of_a_db():
    """A class can rise while one photo falls through the issue's floor: refused, naming the photo; a photo
    that already lost more under the bundled model may not lose more than it did."""
    from serpentir_lab.release.regression_gate import regression_gate

    bundled = _blur_rows([0.10, 0.20, 0.30, 0.40], [0.0, 0.0, 0.0, -0.5])
    one_photo = regression_gate(_blur_rows([0.90, 0.90, 0.90, -0.15], [0.0, 0.0, 0.0, -0.5]), bundled)
    assert not one_photo.passed
    assert "- Gaussian blur sigma 1: d -0.15 dB against its input (allowed -0.10): WORSE" in one_photo.lines
    assert regression_gate(_blur_rows([0.2, 0.3, 0.4, 0.5], [0.1, 0.1, 0.1, -0.45]), bundled).passed
    deeper = regression_gate(_blur_rows([0.2, 0.3, 0.4, 0.5], [0.1, 0.1, 0.1, -0.6]), bundled)
    assert not deeper.passed and any("sigma 2: d -0.60 dB" in line and "allowed -0.50" in line for line in deeper.lines)


def test_every_floor_names_a_row_its_task_is_scored_on():
    from serpentir.checkpoint import build_task
    from serpentir_lab.release.blind_validation import STRENGTHS
    from serpentir_lab.release.class_curve import FLOORS

    for task, task_floors in FLOORS.items():  # a misspelt label would leave its floor unread, silently
        labels = {label for label, _, _ in STRENGTHS.get(task, [])} | {f"{build_task(task, {}).name} draws, one per photo"}
        assert set(task_floors) <= labels, (task, set(task_floors) - labels)


def test_curve_readings_follow_the_slope_over_the_last_1000_steps():
    from serpentir_lab.release.class_curve import curve_table, last_slope

    rows = [{"step": s, "Gaussian blur sigma 1": 0.2 + 0.1 * s / 1000, "Gaussian blur sigma 2": 0.5 + 0.01 * s / 1000,
             "noise 10/255": 5.0, "JPEG q70": -0.1} for s in range(0, 3001, 500)]
    assert last_slope(rows, "Gaussian blur sigma 1") == pytest.approx(0.1)  # (0.5 - 0.4) over steps 2000-3000
    assert last_slope(rows[:2], "noise 10/255") is None  # 500 steps cannot show a 1000-step slope
    table = curve_table(rows, "general")
    assert "| Gaussian blur sigma 1 | 0.20 | 0.50 | +0.100 | +0.100 [+0.100, +0.100] | 1 | below, still rising |" in table
    assert "| Gaussian blur sigma 2 | 0.50 | 0.53 | +0.010 | +0.010 [+0.010, +0.010] | 1 | below, flat |" in table
    assert "| noise 10/255 | 5.00 | 5.00 | +0.000 | +0.000 [+0.000, +0.000] | 4 | met |" in table
    assert "| JPEG q70 | -0.10 | -0.10 | +0.000 | +0.000 [+0.000, +0.000] | - | - |" in table  # no floor at q70
    assert "below, run too short to judge" in curve_table(rows[:2], "general")


def test_the_fitted_slope_is_the_least_squares_line_of_the_last_3000_steps_with_its_t_interval():
    import numpy as np

    from serpentir_lab.release.class_curve import curve_table, fitted_slope

    gains = [0.45, 0.20, 0.57, 0.55, 0.36, 0.33, 0.48, 0.54, 0.56, 0.44, 0.53, 0.54]  # wandering, no trend
    rows = [{"step": 500 * (i + 1), "g": g} for i, g in enumerate(gains)]
    x = np.array([r["step"] / 1000 for r in rows if r["step"] >= 3000])
    y = np.array([r["g"] for r in rows if r["step"] >= 3000])
    slope, intercept = np.polyfit(x, y, 1)
    stderr = np.sqrt(np.sum((y - slope * x - intercept) ** 2) / (len(x) - 2) / np.sum((x - x.mean()) ** 2))
    half = 2.5706 * stderr  # Student's t, 97.5th percentile, 5 degrees of freedom (7 points), from the tables
    fit, lo, hi = fitted_slope(rows, "g")
    assert fit == pytest.approx(slope, abs=1e-12)
    assert (lo, hi) == pytest.approx((slope - half, slope + half), abs=1e-4)
    assert fitted_slope(rows[:2], "g") is None  # two points are not a fit

    # a long wandering curve: the last two checkpoints 1000 steps apart read +0.11 dB per 1000, the line
    # through all of it is flat within 0.05 at 95%; seven points over 3000 steps are too few to say so
    long_rows = [{"step": 500 * (i + 1), "Gaussian blur sigma 1.0": g} for i, g in enumerate(gains + gains[::-1][1:])]
    long_rows[-1]["Gaussian blur sigma 1.0"] = long_rows[-3]["Gaussian blur sigma 1.0"] + 0.11
    table = curve_table(long_rows, "deblur", fit_span=11000)
    assert "below, flat by the fitted line" in table
    assert "below, still rising" in curve_table(long_rows, "deblur", fit_span=3000)


def test_class_curve_scores_numbered_checkpoints_once(tiny_corpus, tmp_path, monkeypatch):
    from serpentir.train import numbered_checkpoint
    from serpentir_lab.release import class_curve as cc

    task, model = build_task("general"), _identity_model()
    for step in (250, 500, 1000, 1500):
        save_checkpoint(numbered_checkpoint(tmp_path / "run", step), model=model, task=task, step=step,
                        ema_model=model, config={})
    rows = cc.class_curve(tmp_path / "run", tiny_corpus, tmp_path / "curve", every=500, progress=False)
    assert [r["step"] for r in rows] == [500, 1000, 1500]  # 250 is not a multiple of 500
    assert all(abs(r["Gaussian blur sigma 1"]) < 1e-4 and math.isinf(r["sharp photo, no degradation"]) for r in rows)

    def no_scoring(*args):
        raise AssertionError("a cached checkpoint was scored again")

    monkeypatch.setattr(cc, "score_checkpoint", no_scoring)
    assert cc.class_curve(tmp_path / "run", tiny_corpus, tmp_path / "curve", every=500, progress=False) == rows
    md = cc.write_curve(rows, "general", tmp_path / "curve", title="t", command="c")
    assert "| Gaussian blur sigma 1 | 0.00 | 0.00 | +0.000 | +0.000 [+0.000, +0.000] | 1 | below, flat |" in md.read_text()
    assert (tmp_path / "curve" / "class_curve.png").stat().st_size > 1000
    assert (tmp_path / "curve" / "class_curve.csv").read_text().startswith('step,"sharp photo, no degradation",')


def test_a_continued_round_joins_the_earlier_curve_with_its_steps_counted_on(tmp_path):
    from serpentir.errors import UserError
    from serpentir_lab.release.class_curve import CACHE, cached_rows, continued, curve_table

    earlier = [{"step": s, "Gaussian blur sigma 1.0": 0.4 + 0.02 * s / 1000} for s in (500, 1000, 1500, 2000)]
    later = [{"step": s, "Gaussian blur sigma 1.0": 0.44 + 0.02 * s / 1000} for s in (500, 1000)]
    joined = continued(earlier, later)
    assert [r["step"] for r in joined] == [500, 1000, 1500, 2000, 2500, 3000]
    assert joined[-1]["Gaussian blur sigma 1.0"] == later[-1]["Gaussian blur sigma 1.0"]
    assert later[0]["step"] == 500  # the later round's rows are not changed in place
    with pytest.raises(UserError, match="different strengths"):
        continued(earlier, [{"step": 500, "JPEG q30": 0.3}])
    # the line spans both rounds when asked to: 0.02 dB per 1000 steps throughout
    assert "| fitted slope, last 2500 steps [95% interval] |" in curve_table(joined, "deblur", fit_span=2500)
    assert "| Gaussian blur sigma 1.0 | 0.41 | 0.46 | +0.020 | +0.020 [+0.020, +0.020] | 1.5 | below, flat |" in curve_table(joined, "deblur", 2500)

    key = {"corpus": "/c", "max_side": 768}
    steps = {str(r["step"]): {"mtime": 0.0, "gains": {"Gaussian blur sigma 1.0": r["Gaussian blur sigma 1.0"]}}
             for r in reversed(earlier)}
    (tmp_path / CACHE).write_text(json.dumps({"key": key, "steps": steps}))
    assert cached_rows(tmp_path) == (key, earlier)  # in step order, whatever the cache's order
    with pytest.raises(UserError, match="no class_curve_scores.json"):
        cached_rows(tmp_path / "missing")
