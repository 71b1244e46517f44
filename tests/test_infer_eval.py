"""Evaluation writes per-image CSV rows whose numbers are the metrics of the restored and degraded images;
`degrade` writes the same degradations to disk that evaluation draws on the fly."""

import csv

import pytest
import torch

from real_photos import photo
from serpentir import metrics
from serpentir.checkpoint import build_model, build_task, save_checkpoint
from serpentir.image_io import load_image, save_image
from serpentir.infer import degrade_folder, evaluate_checkpoint, format_summary


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def clean_dir(tmp_path):
    """Two small real photos, one in a subfolder."""
    root = tmp_path / "clean"
    astronaut = photo("astronaut", (48, 40), top=60, left=200)
    coffee = photo("coffee", (40, 56), top=100, left=200)
    save_image(astronaut, root / "astronaut.png")
    save_image(coffee, root / "sub" / "coffee.png")
    return root


def _checkpoint(tmp_path, task_name):
    torch.manual_seed(0)
    task = build_task(task_name)
    model = build_model("serpent-t", {}, channels=3, extra_channels=task.extra_channels)
    return save_checkpoint(tmp_path / f"{task_name}.safetensors", model=model, task=task, step=0), model, task


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_eval_csv_holds_the_metrics_of_each_image(tmp_path, clean_dir):
    ckpt, model, task = _checkpoint(tmp_path, "denoise")
    rows, summary = evaluate_checkpoint(ckpt, tmp_path / "eval", data_dir=clean_dir, seed=2, device="cpu",
                                        progress=False)
    table = _read(tmp_path / "eval" / "per_image.csv")
    assert list(table[0]) == ["name", "psnr", "ssim", "lpips", "input_psnr", "input_ssim", "input_lpips"]
    assert [r["name"] for r in table] == ["astronaut.png", "sub/coffee.png"]
    for i, row in enumerate(table):
        clean = load_image(clean_dir / row["name"])[None]
        degraded = task(clean[0], 2 * 100003 + i)[None]  # seeded by the image's index
        with torch.no_grad():
            restored = model.eval()(degraded).clamp(0, 1)
        assert float(row["input_psnr"]) == pytest.approx(metrics.psnr(degraded, clean).item(), abs=1e-4)
        assert float(row["psnr"]) == pytest.approx(metrics.psnr(restored, clean).item(), abs=1e-3)
        assert float(row["ssim"]) == pytest.approx(metrics.ssim(restored, clean).item(), abs=1e-4)
        assert float(row["lpips"]) == pytest.approx(metrics.lpips(restored, clean).item(), abs=1e-4)
        assert float(row["input_lpips"]) > 0
    assert summary["images"] == 2
    assert summary["input_psnr"] == pytest.approx(sum(r["input_psnr"] for r in rows) / 2)
    summary_rows = _read(tmp_path / "eval" / "summary.csv")
    assert [r["which"] for r in summary_rows] == ["input", "restored"]
    text = format_summary(summary)
    assert "PSNR" in text and f"{summary['input_psnr']:.2f}" in text


@pytest.mark.parametrize("task_name", ["denoise", "inpaint"])
def test_degraded_folder_evaluates_like_on_the_fly(tmp_path, clean_dir, task_name):
    ckpt, _, _ = _checkpoint(tmp_path, task_name)
    written = degrade_folder(clean_dir, tmp_path / "bench", task=task_name, seed=1, progress=False)
    assert [p.relative_to(tmp_path / "bench").as_posix() for p in written] == ["astronaut.png", "sub/coffee.png"]
    assert (tmp_path / "bench" / "degrade.json").is_file()
    if task_name == "inpaint":
        mask = load_image(tmp_path / "bench" / "masks" / "astronaut.png")
        assert mask.shape[0] == 1 and set(mask.unique().tolist()) <= {0.0, 1.0} and mask.mean() > 0.05
    on_the_fly, _ = evaluate_checkpoint(ckpt, tmp_path / "a", data_dir=clean_dir, seed=1, device="cpu",
                                        with_lpips=False, progress=False)
    from_disk, _ = evaluate_checkpoint(ckpt, tmp_path / "b", input_dir=tmp_path / "bench", target_dir=clean_dir,
                                       device="cpu", with_lpips=False, progress=False)
    for a, b in zip(on_the_fly, from_disk):
        assert a["name"] == b["name"]
        assert a["input_psnr"] == pytest.approx(b["input_psnr"], abs=0.05)  # 8-bit rounding of the saved PNG
        assert a["psnr"] == pytest.approx(b["psnr"], abs=0.1)


def test_saved_images_keep_the_kind_of_their_clean_file(tmp_path):
    """eval --save-images: a 16-bit grey photo gives a 16-bit grey image, an RGBA one keeps its alpha exactly."""
    import numpy as np
    from PIL import Image

    from real_photos import photo_array
    from serpentir.image_io import read_picture

    root = tmp_path / "clean"
    root.mkdir()
    rgb = photo_array(size=(40, 48))
    grey16 = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257
    Image.fromarray(grey16).save(root / "grey16.png")
    alpha = np.random.default_rng(0).integers(0, 256, (40, 48), dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha])).save(root / "rgba.png")
    ckpt, _, _ = _checkpoint(tmp_path, "denoise")
    evaluate_checkpoint(ckpt, tmp_path / "e", data_dir=root, device="cpu", with_lpips=False, save_images=True,
                        progress=False)
    grey = read_picture(tmp_path / "e" / "images" / "grey16.png")
    assert grey.colour.shape == (1, 40, 48) and grey.bit_depth == 16 and grey.alpha is None
    with_alpha = read_picture(tmp_path / "e" / "images" / "rgba.png")
    assert with_alpha.colour.shape == (3, 40, 48) and np.array_equal(with_alpha.alpha, alpha)
