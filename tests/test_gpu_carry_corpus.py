"""benchmarks/gpu/carry_corpus.py: a corpus that fits the device's carry, with the same pixels."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import loaded_script

from serpentir.data import sample_images_dir
from serpentir.image_io import list_images, load_image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "carry_corpus.py"


@pytest.fixture(scope="module")
def packer():
    with loaded_script(SCRIPT) as module:
        yield module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for split in ("train", "val"):
        shutil.copytree(sample_images_dir() / split, root / split)
    return root


def test_the_packed_photos_fit_the_budget_and_keep_their_pixels(packer, corpus, tmp_path):
    budget = 2_400_000  # about half of the sample training photos as WebP
    report = packer.pack(corpus, tmp_path / "out", budget, val_photos=2)
    files = list_images(tmp_path / "out")
    assert sum(p.stat().st_size for p in files) == report["bytes"] <= budget
    assert 0 < len(report["train"]) < len(list_images(corpus / "train")) and len(report["val"]) == 2
    assert sorted(report["train"] + report["left_out"]) == sorted(p.stem for p in list_images(corpus / "train"))
    assert (tmp_path / "out" / "left_out.txt").read_text().split() == report["left_out"]
    for packed in files:
        original = next((corpus / packed.parent.name).glob(packed.stem + ".*"))
        assert np.array_equal(load_image(packed, channels=3), load_image(original, channels=3)), packed.name
    kept = [(tmp_path / "out" / "train" / f"{name}.webp").stat().st_size for name in report["train"]]
    left = [len(packer.lossless_webp(corpus / "train" / f"{name}.png")) for name in report["left_out"]]
    assert max(kept) <= min(left)  # smallest first: the most photos the budget holds


def test_the_default_budget_is_what_the_working_tree_leaves_of_64_mib(packer):
    used = packer.tree_bytes()
    assert 1e6 < used < packer.CARRY_LIMIT  # the checkout itself: weights, LPIPS, docs


def test_a_budget_that_holds_no_photo_is_refused(packer, corpus, tmp_path):
    with pytest.raises(SystemExit, match="holds no training photo"):
        packer.pack(corpus, tmp_path / "out", 1000)
    assert not (tmp_path / "out").exists()
