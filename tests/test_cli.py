"""The `serpentir` command: restore / degrade / eval / train end to end, and every user mistake ends
in one line on stderr and a non-zero exit code, never a traceback."""

import os
import subprocess
import sys

import pytest
import torch

from real_photos import photo
from serpentir import cli
from serpentir.checkpoint import build_model, build_task, save_checkpoint
from serpentir.image_io import load_image, save_image


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def photos(tmp_path):
    """A folder of two small real photos (one in a subfolder) and a denoising checkpoint."""
    root = tmp_path / "photos"
    astronaut = photo("astronaut", (40, 36), top=60, left=200)
    chelsea = photo("chelsea", (40, 50), top=50, left=100)
    save_image(astronaut, root / "astronaut.png")
    save_image(chelsea, root / "cats" / "chelsea.jpg")
    torch.manual_seed(0)
    task = build_task("denoise")
    ckpt = save_checkpoint(tmp_path / "denoise.safetensors", model=build_model("serpent-t", {}, channels=3), task=task,
                           step=0)
    return root, ckpt


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, needle):
    assert code != 0
    assert err.startswith("serpentir: error:") and err.count("\n") == 1, err
    assert needle in err, err
    assert "Traceback" not in err


def test_restore_an_image_then_refuse_to_overwrite(tmp_path, photos, capsys):
    root, ckpt = photos
    out = tmp_path / "out.png"
    code, stdout, _ = run(["restore", root / "astronaut.png", "-o", out, "--weights", ckpt, "--device", "cpu"], capsys)
    assert code == 0 and "restored 1 image" in stdout
    assert load_image(out).shape == (3, 40, 36)
    before = out.read_bytes()
    code, _, err = run(["restore", root / "astronaut.png", "-o", out, "--weights", ckpt], capsys)
    assert_one_line_error(code, err, "already exists; pass --overwrite")
    assert out.read_bytes() == before
    code, _, _ = run(["restore", root / "astronaut.png", "-o", out, "--weights", ckpt, "--overwrite", "--tile", "24",
                      "--tile-overlap", "8"], capsys)
    assert code == 0


def test_restore_a_folder_keeps_names_and_sizes(tmp_path, photos, capsys):
    root, ckpt = photos
    code, stdout, _ = run(["restore", root, "-o", tmp_path / "restored", "--weights", ckpt, "--ext", "png"], capsys)
    assert code == 0 and "restored 2 images" in stdout
    assert load_image(tmp_path / "restored" / "cats" / "chelsea.png").shape == (3, 40, 50)
    assert (tmp_path / "restored" / "astronaut.png").is_file()


def test_restore_never_writes_over_its_input(tmp_path, photos, capsys):
    root, ckpt = photos
    image = root / "astronaut.png"
    before = image.read_bytes()
    code, _, err = run(["restore", image, "-o", image, "--weights", ckpt, "--overwrite"], capsys)
    assert_one_line_error(code, err, "is an input file")
    code, _, err = run(["restore", image, "-o", root, "--weights", ckpt, "--overwrite"], capsys)  # root/astronaut.png
    assert_one_line_error(code, err, "is an input file")
    code, _, err = run(["restore", root, "-o", root, "--weights", ckpt, "--overwrite"], capsys)
    assert_one_line_error(code, err, "is the input folder")
    code, _, err = run(["restore", root, "-o", root / "out", "--weights", ckpt], capsys)
    assert_one_line_error(code, err, "inside the input folder")
    assert image.read_bytes() == before


def test_restore_without_weights_says_none_are_bundled(photos, tmp_path, capsys):
    root, _ = photos
    code, _, err = run(["restore", root / "astronaut.png", "-o", tmp_path / "o.png", "--task", "sr8"], capsys)
    assert_one_line_error(code, err, "no bundled weights for task 'sr8'")
    assert "pass --weights" in err


@pytest.mark.parametrize("argv, needle", [
    (["restore", "{root}/missing.png", "-o", "{tmp}/o.png", "--weights", "{ckpt}"], "no such file"),
    (["restore", "{root}/bad.png", "-o", "{tmp}/o.png", "--weights", "{ckpt}"], "not an image file"),
    (["restore", "{root}/astronaut.png", "-o", "{tmp}/o.png", "--weights", "{root}/bad.png"], "not a safetensors"),
    (["restore", "{root}/astronaut.png", "-o", "{tmp}/o.png", "--weights", "{ckpt}", "--task", "inpaint"],
     "was trained for task 'denoise'"),
    (["restore", "{root}/astronaut.png", "-o", "{tmp}/o.png", "--weights", "{ckpt}", "--tile", "0"],
     "expected a positive integer"),
    (["degrade", "{root}", "-o", "{tmp}/d", "--task", "dehaze"], "unknown task 'dehaze'"),
    (["degrade", "{root}", "-o", "{tmp}/d", "--task", "denoise", "--param", "sigmaa=3"], "bad option for task"),
    (["train", "model.name=serpent-xxl", "out_dir={tmp}/t"], "unknown model 'serpent-xxl'"),
    (["train", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
    (["train", "{tmp}/missing.yaml"], "config file not found"),
    (["eval", "--weights", "{ckpt}", "--data", "{tmp}/nowhere", "--out", "{tmp}/e"], "no such folder"),
    (["eval", "--weights", "{ckpt}", "--input-dir", "{root}", "--out", "{tmp}/e"], "give both --input-dir and --target-dir"),
    (["forward", "--model", "nope"], "unknown model 'nope'"),
    (["restore", "{root}/astronaut.png"], "required: -o/--output"),
])
def test_user_errors_are_one_line(tmp_path, photos, capsys, argv, needle):
    root, ckpt = photos
    (root / "bad.png").write_bytes(b"this is not a png")
    argv = [a.format(root=root, tmp=tmp_path, ckpt=ckpt) for a in argv]
    try:
        code, _, err = run(argv, capsys)
    except SystemExit as e:  # argparse's own errors exit from inside parse_args
        code, err = e.code, capsys.readouterr().err
        assert err.startswith("serpentir") and err.count("\n") == 1 and needle in err, err
        assert code == 2
        return
    assert_one_line_error(code, err, needle)


def test_errors_through_the_real_command_have_no_traceback(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for argv, needle in ([["train", "optim.lrr=1"], "unknown config key"],
                         [["restore", str(tmp_path / "x.png"), "-o", str(tmp_path / "y.png"), "--tile", "x"],
                          "expected a positive integer"]):
        done = subprocess.run([sys.executable, "-m", "serpentir", *argv], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == 2 and needle in done.stderr and "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr


def test_degrade_then_eval_commands(tmp_path, photos, capsys):
    root, _ = photos
    torch.manual_seed(0)
    task = build_task("inpaint")
    model = build_model("serpent-t", {}, channels=3, extra_channels=1)
    ckpt = save_checkpoint(tmp_path / "inpaint.safetensors", model=model, task=task, step=0)
    code, stdout, _ = run(["degrade", root, "-o", tmp_path / "holes", "--task", "inpaint", "--seed", "4"], capsys)
    assert code == 0 and "degraded 2 images" in stdout
    assert (tmp_path / "holes" / "cats" / "chelsea.png").is_file()
    assert (tmp_path / "holes" / "masks" / "cats" / "chelsea.png").is_file()
    code, _, err = run(["degrade", root, "-o", tmp_path / "holes", "--task", "inpaint"], capsys)
    assert_one_line_error(code, err, "already exist; pass --overwrite")

    code, stdout, _ = run(["eval", "--weights", ckpt, "--input-dir", tmp_path / "holes", "--target-dir", root,
                           "--out", tmp_path / "scores", "--no-lpips"], capsys)
    assert code == 0 and "restored" in stdout and "input" in stdout
    assert (tmp_path / "scores" / "per_image.csv").read_text().count("\n") == 3  # header + 2 images
    # restoring an inpainting folder picks up its masks/ folder
    code, stdout, _ = run(["restore", tmp_path / "holes", "-o", tmp_path / "filled", "--weights", ckpt], capsys)
    assert code == 0 and "restored 2 images" in stdout and not (tmp_path / "filled" / "masks").exists()


def test_train_command_writes_a_checkpoint_and_resumes(tmp_path, capsys):
    argv = ["train", "task.name=denoise", "steps=2", "data.crop_size=16", "data.batch_size=2", "data.num_workers=0",
            "data.val_crop_size=32", "data.max_val_images=1", "lpips_at_end=false", "progress=false",
            "tensorboard=false", "--out-dir", tmp_path / "run"]
    code, stdout, _ = run(argv + ["--stop-after", "1"], capsys)
    assert code == 0 and "step 1: checkpoint" in stdout
    code, stdout, _ = run(argv + ["--resume"], capsys)
    assert code == 0 and "step 2: checkpoint" in stdout
    code, stdout, _ = run(["train", "configs/serpent-t_gaussian_deblur.yaml", "--print-config", "--set", "steps=5"]
                          if os.path.exists("configs") else ["train", "--print-config", "steps=5"], capsys)
    assert code == 0 and "steps: 5" in stdout
