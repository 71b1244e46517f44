"""The command line's answers to what surprised a new user: what fixed-strength models expect, which tasks
ship weights, where -o writes, an overlap too large for its tile, and the demo of a checkpoint."""

import pytest
import torch

from real_photos import photo
from serpentir import cli
from serpentir.checkpoint import build_model, build_task, save_checkpoint
from serpentir.image_io import load_image, save_image
from serpentir.infer import FIXED_STRENGTH, bundled_tasks
from serpentir.infer.catalogue import EXPECTS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def image(tmp_path):
    """A small real photo and a denoising checkpoint."""
    path = tmp_path / "astronaut.png"
    save_image(photo("astronaut", (40, 36), top=60, left=200), path)
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "denoise.safetensors", model=build_model("serpent-t", {}, channels=3),
                           task=build_task("denoise"), step=0)
    return path, ckpt


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def help_text(argv, capsys) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_every_bundled_task_says_what_its_model_expects():
    assert set(bundled_tasks()) <= set(EXPECTS)
    assert set(FIXED_STRENGTH) <= set(bundled_tasks())


def test_a_fixed_strength_model_says_what_it_expects_in_help_and_when_used(image, tmp_path, capsys):
    text = help_text(["restore"], capsys)
    assert "gaussian_deblur expects exactly a Gaussian blur of sigma 3 px" in text
    assert all(f"{task} expects" in text for task in FIXED_STRENGTH)
    source, _ = image
    code, _, err = run(["restore", source, "-o", tmp_path / "out.png", "--task", "gaussian_deblur"], capsys)
    assert code == 0
    assert "note: the bundled gaussian_deblur model expects exactly a Gaussian blur of sigma 3 px" in err
    code, _, err = run(["restore", source, "-o", tmp_path / "general.png"], capsys)
    assert code == 0 and "note" not in err  # the default, blind model expects nothing in particular


def test_tasks_says_which_tasks_have_bundled_weights(capsys):
    code, out, _ = run(["tasks"], capsys)
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert code == 0 and out.split()[:3] == ["name", "bundled", "description"]
    assert rows["gaussian_deblur"] == "yes" and rows["general"] == "yes" and rows["sr8"] == "no"


@pytest.mark.parametrize("command, words", [("models", "parameter count"), ("tasks", "bundled"),
                                             ("forward", "timed")])
def test_listing_commands_describe_themselves(command, words, capsys):
    assert words in help_text([command], capsys)


def test_top_level_help_says_restore_uses_the_bundled_models(capsys):
    text = help_text([], capsys)
    assert "restore an image or a folder of images (bundled models, or a checkpoint)" in text
    assert all(command in text for command in ("corpus", "ablate", "export", "compare", "bench", "demo"))


def test_an_overlap_too_large_for_its_tile_is_refused(image, tmp_path, capsys):
    source, ckpt = image
    code, _, err = run(["restore", source, "-o", tmp_path / "o.png", "--weights", ckpt, "--tile", "16",
                        "--tile-overlap", "8"], capsys)
    assert code == 2 and err == "serpentir: error: --tile-overlap 8 does not fit --tile 16: the overlap must stay " \
                                "below half the tile (at most 7)\n"
    assert not (tmp_path / "o.png").exists()
    code, _, err = run(["eval", "--weights", ckpt, "--data", source.parent, "--out", tmp_path / "e", "--no-lpips",
                        "--tile", "16", "--tile-overlap", "30"], capsys)
    assert code == 2 and "does not fit --tile 16" in err


def test_the_default_overlap_shrinks_to_fit_a_small_tile(image, tmp_path, capsys):
    source, ckpt = image
    code, _, _ = run(["restore", source, "-o", tmp_path / "o.png", "--weights", ckpt, "--tile", "16"], capsys)
    assert code == 0 and load_image(tmp_path / "o.png").shape == (3, 40, 36)


def test_output_parents_are_created_and_an_existing_folder_receives_the_image(image, tmp_path, capsys):
    source, ckpt = image
    nested = tmp_path / "new" / "deeper" / "out.png"
    code, out, _ = run(["restore", source, "-o", nested, "--weights", ckpt], capsys)
    assert code == 0 and nested.is_file()
    folder = tmp_path / "existing"
    folder.mkdir()
    code, out, _ = run(["restore", source, "-o", folder, "--weights", ckpt], capsys)
    assert code == 0 and (folder / "astronaut.png").is_file() and str(folder / "astronaut.png") in out
    code, _, _ = run(["restore", source, "-o", f"{tmp_path / 'fresh'}/", "--weights", ckpt], capsys)
    assert code == 0 and (tmp_path / "fresh" / "astronaut.png").is_file()
    text = help_text(["restore"], capsys)
    assert "existing folder (or a name ending in /) is written inside it" in text
    assert "missing parent folders are created" in text


def test_demo_of_a_checkpoint_and_of_a_task_without_bundled_weights(image, tmp_path, capsys):
    source, ckpt = image
    code, _, err = run(["demo", "--task", "sr8", "-o", tmp_path / "d.png"], capsys)
    assert code == 2 and "no bundled weights for task 'sr8'" in err and "pass --weights CKPT" in err
    code, out, _ = run(["demo", "--weights", ckpt, "--image", source, "-o", tmp_path / "d.png"], capsys)
    assert code == 0 and f"task denoise, weights {ckpt}" in out
    assert load_image(tmp_path / "d.png").shape[1] > 36  # the label strip above the three panels
    code, _, err = run(["demo", "--weights", ckpt, "--task", "jpeg", "-o", tmp_path / "e.png"], capsys)
    assert code == 2 and "was trained for task 'denoise', not 'jpeg'" in err
