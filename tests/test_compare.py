"""`serpentir compare`: runs of one task scored on the same photos, costed like `serpentir bench`, caveats kept."""

import csv

import pytest
import torch
from PIL import Image

from real_photos import photo_array
from serpentir.checkpoint import load_checkpoint
from serpentir.cli import main
from serpentir.errors import UserError
from serpentir.infer import evaluate_checkpoint
from serpentir.train import load_config, train
from serpentir_lab.bench import count_flops
from serpentir_lab.compare import compare_runs, protocol_differences, training_seconds
from serpentir_lab.compare_report import write_comparison

pytestmark = pytest.mark.usefixtures("one_thread")

PROTOCOL = ["data.num_workers=0", "progress=false", "tensorboard=false", "lpips_at_end=false", "task.name=denoise",
            "steps=3", "optim.warmup_steps=1", "data.crop_size=16", "data.batch_size=2", "data.val_crop_size=32",
            "data.max_val_images=1", "val_every=100", "ckpt_every=100", "log_every=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """serpent-t and unet-t trained 3 steps each under one protocol, a third run with another lr, two photos."""
    root = tmp_path_factory.mktemp("compare")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, extra in (("serpent-t", []), ("unet-t", []), ("other", ["optim.lr=1e-3", "model.name=nafnet-t"])):
            model = [] if extra else [f"model.name={name}"]
            train(load_config(None, PROTOCOL + model + extra + [f"out_dir={root / name}"]), log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    val = root / "val"
    val.mkdir()
    Image.fromarray(photo_array("astronaut", (48, 40), 100, 200)).save(val / "a.png")
    Image.fromarray(photo_array("coffee", (40, 56), 150, 250)).save(val / "b.png")
    return root, val


def test_scores_and_costs_match_independent_measurements(runs):
    root, val = runs
    c = compare_runs([root / "serpent-t", root / "unet-t"], val_dir=val, latency_size=32, repeats=1, threads=1,
                     timeout=120, progress=False)
    assert c.task == "denoise" and [r.model for r in c.rows] == ["serpent-t", "unet-t"]
    assert c.notes == []  # same protocol, finished runs, every latency measured
    for row in c.rows:
        _, summary = evaluate_checkpoint(root / row.model / "checkpoints" / "last.safetensors", root / "eval",
                                         data_dir=val, progress=False)
        assert row.psnr == pytest.approx(summary["psnr"], abs=1e-6)
        assert row.ssim == pytest.approx(summary["ssim"], abs=1e-6)
        assert row.lpips == pytest.approx(summary["lpips"], abs=1e-6)
        assert c.references["input"]["psnr"] == pytest.approx(summary["input_psnr"], abs=1e-6)
        model, _, _ = load_checkpoint(root / row.model / "checkpoints" / "last.safetensors")
        assert row.params == sum(p.numel() for p in model.parameters())
        assert row.flops[512] == count_flops(model, (1, 3, 512, 512)).flops
        assert row.macs[512] == count_flops(model, (1, 3, 512, 512)).macs
        # per photo, the numbers the mean is made of, named so that studies can pair photos across runs
        assert [p["photo"] for p in row.per_photo] == ["a.png", "b.png"]
        assert sum(p["psnr"] for p in row.per_photo) / 2 == pytest.approx(row.psnr, abs=1e-9)
        assert all(len(p["band_psnr"]) == 3 for p in row.per_photo)
        assert isinstance(row.latency_ms, float) and row.latency_ms > 0
        assert row.step == 3 and row.train_seconds > 0
    assert c.references["classical"]["psnr"] > c.references["input"]["psnr"]  # NLM denoises


def test_training_seconds_rebuilt_from_the_log(tmp_path):
    with open(tmp_path / "train_log.csv", "w", newline="") as f:
        csv.writer(f).writerows([["step", "loss", "lr", "images_per_s"], [10, 1, 1, 8.0], [20, 1, 1, 4.0],
                                 [25, 1, 1, 2.0]])
    # batch 2 x 2 processes: 10 steps at 8 img/s = 5 s, 10 at 4 = 10 s, 5 at 2 = 10 s
    assert training_seconds(tmp_path, batch_size=2, world_size=2) == pytest.approx(25.0)
    assert training_seconds(tmp_path / "none", 2, 1) is None


def test_protocol_differences_name_what_differs_and_ignore_bookkeeping():
    a = {"model": {"name": "serpent-t", "kwargs": {}}, "optim": {"lr": 1e-3}, "out_dir": "x", "steps": 5}
    b = {"model": {"name": "unet-t", "kwargs": {"width": 8}}, "optim": {"lr": 2e-3}, "out_dir": "y", "steps": 5}
    assert protocol_differences({"a": a, "b": b}) == ["optim.lr: a=0.001, b=0.002"]
    assert protocol_differences({"a": a, "a2": dict(a, out_dir="z")}) == []
    # a key an older config lacks counts as its default, not as a difference
    assert protocol_differences({"a": dict(a, init_from=None), "old": a}) == []
    assert protocol_differences({"a": dict(a, init_from="w.safetensors"), "old": a}) == [
        "init_from: a=w.safetensors, old=None"]


def test_a_different_protocol_is_reported_and_another_task_refused(runs, tmp_path):
    root, val = runs
    c = compare_runs([root / "serpent-t", root / "other"], val_dir=val, latency_size=None, progress=False)
    assert c.notes == [f"training settings differ: optim.lr: {root / 'serpent-t'}=0.0002, {root / 'other'}=0.001"]
    text = write_comparison(c, tmp_path / "out")
    assert "optim.lr" in text and "nafnet-t" in text
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"compare.md", "compare.csv", "quality_vs_flops.png"}
    with open(tmp_path / "out" / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows][:2] == ["serpent-t", "nafnet-t"] and rows[-1]["model"].startswith("non-local")
    assert int(rows[0]["macs_512"]) == c.rows[0].macs[512] and int(rows[0]["flops_512"]) == c.rows[0].flops[512]
    assert "| GMACs 512 |" in text and "multiply-accumulates" in text

    deblur = train(load_config(None, PROTOCOL + ["task.name=gaussian_deblur", "steps=1", f"out_dir={tmp_path / 'd'}"]),
                   log=lambda m: None)
    with pytest.raises(UserError, match="compare runs of one task"):
        compare_runs([root / "serpent-t", deblur.out_dir], val_dir=val, latency_size=None, progress=False)
    with pytest.raises(UserError, match="no checkpoints/last.safetensors"):
        compare_runs([tmp_path], val_dir=val, latency_size=None, progress=False)


def test_cli_compare_writes_the_report(runs, tmp_path, capsys):
    root, val = runs
    code = main(["compare", str(root / "serpent-t"), str(root / "unet-t"), "--val-dir", str(val), "--latency-size", "0",
                 "--out", str(tmp_path / "c"), "--no-plots"])
    out = capsys.readouterr().out
    assert code == 0 and "| serpent-t |" in out and "| unet-t |" in out and "Against serpent-t" in out
    assert (tmp_path / "c" / "compare.md").read_text() in out
    assert main(["compare", str(tmp_path / "missing"), "--val-dir", str(val)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'missing'}: no such checkpoint file" in err
