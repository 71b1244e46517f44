"""`serpentir restore` end to end: every kind of file comes back as the same kind, batches go on past
broken files and resume, the memory guard tiles or refuses, corrupted weights are refused."""

import logging

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from safetensors import safe_open

from png_fixtures import png16_bytes
from real_photos import photo, photo_array
from serpentir import cli
from serpentir.checkpoint import build_model, build_task, load_checkpoint, read_metadata, save_checkpoint
from serpentir.image_io import read_picture, save_image
from serpentir.infer import DEFAULT_TASK, WEIGHTS_DIR, run_tiled

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "denoise.safetensors"
    return save_checkpoint(path, model=build_model("serpent-t", {}, channels=3), task=build_task("denoise"), step=0)


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_kind_of_file_comes_back_as_its_kind(tmp_path, ckpt, capsys):
    rgb = photo_array(size=(36, 44))
    alpha = np.random.default_rng(0).integers(0, 256, (36, 44), dtype=np.uint8)
    alpha[:6] = 0
    grey16 = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257 + 100
    rgba16 = np.dstack([rgb.astype(np.uint16) * 257, alpha.astype(np.uint16) * 257])
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(grey16).save(src / "grey16.png")
    Image.fromarray(np.dstack([rgb, alpha])).save(src / "rgba.png", icc_profile=b"icc!")
    Image.fromarray(rgb).convert("L").save(src / "grey.jpg", quality=90)
    (src / "rgba16.png").write_bytes(png16_bytes(rgba16))
    tifffile.imwrite(src / "rgb16.tif", rgba16[:, :, :3], photometric="rgb")
    code, out, _ = run(["restore", src, "-o", tmp_path / "out", "--weights", ckpt, "--device", "cpu"], capsys)
    assert code == 0 and "restored 5 images" in out
    o = tmp_path / "out"
    assert Image.open(o / "grey16.png").mode.startswith("I") and read_picture(o / "grey16.png").bit_depth == 16
    im = Image.open(o / "rgba.png")
    assert im.mode == "RGBA" and im.info["icc_profile"] == b"icc!"
    assert np.array_equal(np.asarray(im)[:, :, 3], alpha)
    assert Image.open(o / "grey.jpg").mode == "L"
    back = read_picture(o / "rgba16.png")
    assert back.bit_depth == 16 and np.array_equal(back.alpha, rgba16[:, :, 3])
    assert tifffile.imread(o / "rgb16.tif").dtype == np.uint16
    # the format follows the extension: a JPEG at two qualities
    for q in (95, 30):
        code, _, _ = run(["restore", src / "grey.jpg", "-o", tmp_path / f"q{q}.jpg", "--weights", ckpt, "--quality", q],
                         capsys)
        assert code == 0 and Image.open(tmp_path / f"q{q}.jpg").format == "JPEG"
    assert (tmp_path / "q30.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    code, _, err = run(["restore", src / "rgba.png", "-o", tmp_path / "x.jpg", "--weights", ckpt], capsys)
    assert code == 2 and "JPEG has no alpha" in err and not (tmp_path / "x.jpg").exists()


def test_keep_going_then_skip_existing_resume_a_batch(tmp_path, ckpt, capsys):
    src = tmp_path / "in"
    for name in ("a", "c"):
        save_image(photo("chelsea", (32, 40)), src / f"{name}.png")
    (src / "b.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    code, _, err = run(["restore", src, "-o", out, "--weights", ckpt], capsys)
    assert code == 2 and "b.png: not an image file" in err
    code, stdout, err = run(["restore", src, "-o", out, "--weights", ckpt, "--keep-going", "--overwrite"], capsys)
    assert code == 1 and "restored 2 images" in stdout
    lines = err.strip().splitlines()
    assert lines == [f"serpentir: error: {src / 'b.png'}: not an image file (cannot identify image)",
                     "serpentir: error: 1 of 3 images failed (each named above)"]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    # an interrupted run left a.png only: a rerun refuses, --skip-existing restores just the rest
    (out / "c.png").unlink()
    before = (out / "a.png").stat().st_mtime_ns
    code, _, err = run(["restore", src, "-o", out, "--weights", ckpt], capsys)
    assert code == 2 and "already exist" in err
    code, stdout, _ = run(["restore", src, "-o", out, "--weights", ckpt, "--skip-existing", "--keep-going"], capsys)
    assert code == 1 and "restored 1 image" in stdout and "1 skipped" in stdout
    assert (out / "c.png").is_file() and (out / "a.png").stat().st_mtime_ns == before
    code, _, err = run(["restore", src, "-o", out, "--weights", ckpt, "--skip-existing", "--overwrite"], capsys)
    assert code == 2 and "contradict" in err


def test_memory_guard_tiles_with_a_notice_or_refuses(tmp_path, ckpt, capsys, monkeypatch, caplog):
    image = photo("astronaut", (272, 280), top=0, left=100)
    save_image(image, tmp_path / "big.png")
    monkeypatch.setenv("SERPENTIR_AVAILABLE_MEMORY", "2G")
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(["restore", tmp_path / "big.png", "-o", tmp_path / "whole.png", "--weights", ckpt], capsys)
    assert code == 0 and not caplog.records  # 272x280 needs about 0.2 GB: restored whole, no notice
    # The calibrated estimate for 272x280 moves between about 33 and 62 MB from one load to the next (resident-set
    # peaks depend on what the heap already holds), so the budget sits far from it: 80% of 24 MB never holds the
    # whole image, and a 64-pixel tile (about 3 MB) always fits.
    monkeypatch.setenv("SERPENTIR_AVAILABLE_MEMORY", "24M")
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(["restore", tmp_path / "big.png", "-o", tmp_path / "tiled.png", "--weights", ckpt], capsys)
    assert code == 0
    notice = [r.getMessage() for r in caplog.records if "tiles" in r.getMessage()]
    assert len(notice) == 1 and "big.png: restoring in" in notice[0] and "available" in notice[0]
    tile = int(notice[0].split("restoring in ")[1].split("x")[0])
    assert 64 <= tile < 280
    model, _, _ = load_checkpoint(ckpt)
    expected = run_tiled(model, read_picture(tmp_path / "big.png").colour[None], tile, 32)[0].clamp(0, 1)
    written = read_picture(tmp_path / "tiled.png").colour
    assert (written - expected).abs().max() <= 0.5 / 255 + 1e-5  # the file is that tiling, quantised
    code, _, err = run(["restore", tmp_path / "big.png", "-o", tmp_path / "no.png", "--weights", ckpt,
                        "--no-auto-tile"], capsys)
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "no.png").exists()
    suggested = int(err.split("pass --tile ")[1].split()[0])
    assert suggested % 32 == 0 and 64 <= suggested < 280
    # Each run loads the checkpoint afresh and calibrates again, so the advice and the tile above come from two
    # different measurements; with one fixed peak model the refusal advises exactly the tile a restore would use.
    from serpentir.infer import memory

    fixed = memory.PeakModel(whole=memory.PeakLine(2e6, 500.0), in_pieces=memory.PeakLine(2e6, 200.0),
                             pieces_from=10 ** 9)
    monkeypatch.setattr(memory, "peak_model", lambda model, in_channels: fixed)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(["restore", tmp_path / "big.png", "-o", tmp_path / "fixed.png", "--weights", ckpt], capsys)
    assert code == 0
    chosen = int([r.getMessage() for r in caplog.records if "tiles" in r.getMessage()][0].split("restoring in ")[1]
                 .split("x")[0])
    code, _, err = run(["restore", tmp_path / "big.png", "-o", tmp_path / "no.png", "--weights", ckpt,
                        "--no-auto-tile"], capsys)
    assert code == 2 and f"pass --tile {chosen} " in err and 64 <= chosen < 280
    monkeypatch.undo()
    monkeypatch.setenv("SERPENTIR_AVAILABLE_MEMORY", "1M")
    code, _, err = run(["restore", tmp_path / "big.png", "-o", tmp_path / "no.png", "--weights", ckpt], capsys)
    assert code == 2 and "not enough memory" in err


def test_absurd_tile_counts_are_refused_with_the_minimum(tmp_path, ckpt, capsys):
    save_image(torch.rand(3, 1200, 1000), tmp_path / "wide.png")
    code, _, err = run(["restore", tmp_path / "wide.png", "-o", tmp_path / "o.png", "--weights", ckpt, "--tile", 8],
                       capsys)
    assert code == 2 and "10000" in err.replace(",", "") and "smallest tile size for it is" in err
    smallest = int(err.split("smallest tile size for it is ")[1].strip())
    from serpentir.infer.tiling import tile_count

    assert tile_count(1200, 1000, smallest, 32) <= 10000 < tile_count(1200, 1000, smallest - 1, 32)


def _flip_a_tensor_byte(src, dst):
    data = bytearray(src.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    data[header + (len(data) - header) // 2] ^= 0xFF  # inside the tensor data, not the header
    dst.write_bytes(bytes(data))


def test_corrupted_weights_are_refused_and_old_ones_warned(tmp_path, ckpt, capsys, caplog):
    save_image(photo("chelsea", (32, 40)), tmp_path / "a.png")
    bad = tmp_path / "bad.safetensors"
    _flip_a_tensor_byte(WEIGHTS_DIR / "denoise.safetensors", bad)
    code, _, err = run(["restore", tmp_path / "a.png", "-o", tmp_path / "o.png", "--weights", bad], capsys)
    assert code == 2 and err.count("\n") == 1 and f"{bad}: corrupted weights" in err
    assert not (tmp_path / "o.png").exists()
    # a checkpoint from before the digest: loads, with one warning line
    from safetensors.torch import save_file

    with safe_open(str(ckpt), framework="pt") as f:
        meta = {k: v for k, v in f.metadata().items() if k != "tensors_sha256"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(["restore", tmp_path / "a.png", "-o", tmp_path / "o.png", "--weights",
                          tmp_path / "old.safetensors"], capsys)
    assert code == 0
    warned = [r.getMessage() for r in caplog.records if "no digest" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0] and "old.safetensors" in warned[0]


def test_bundled_weights_carry_a_digest_that_verifies():
    paths = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    # every bundled model has its card beside it, and the default task is among them: an empty folder fails
    assert {p.stem for p in paths} == {p.stem for p in WEIGHTS_DIR.glob("*.md")}
    assert DEFAULT_TASK in {read_metadata(p)["task"]["name"] for p in paths}
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            assert len(f.metadata()["tensors_sha256"]) == 64
        load_checkpoint(path)  # raises if the digest does not match


def test_verbose_after_the_command_and_help_lists_bundled_tasks(tmp_path, ckpt, capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["restore", "x", "-o", "y", "-v"]).verbose
    assert parser.parse_args(["-v", "restore", "x", "-o", "y"]).verbose
    assert not parser.parse_args(["restore", "x", "-o", "y"]).verbose
    with pytest.raises(SystemExit):
        cli.main(["restore", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    weights = WEIGHTS_DIR
    files = sorted(p.stem for p in weights.glob("*.safetensors"))  # each bundled file is named after its task
    assert {"general", "gaussian_deblur", "denoise"} <= set(files)
    assert f"Bundled tasks (no --weights needed): {', '.join(files)}." in text


def test_where_memory_cannot_be_measured_images_are_restored_whole_with_a_warning(ckpt, monkeypatch, caplog):
    import serpentir
    from serpentir.infer import memory

    monkeypatch.setattr(memory, "reset_peak_rss", lambda: False)  # a system without /proc/self/clear_refs
    monkeypatch.setenv("SERPENTIR_AVAILABLE_MEMORY", "1M")
    model = serpentir.load_model(ckpt)
    image = photo_array("astronaut", (272, 280), top=0, left=100)
    with caplog.at_level(logging.WARNING):
        out = serpentir.restore(image, model=model)
        serpentir.restore(image, model=model)
    assert out.shape == image.shape
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cannot measure memory here" in warnings[0]  # once per model, not per image
