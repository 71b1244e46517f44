"""The corpus builder on fake wallpaper folders (small crops of real photos), plus the pip photos."""

import csv
import hashlib

import numpy as np
import pytest
from PIL import Image

from real_photos import photo_array
from serpentir.cli import main
from serpentir.errors import UserError
from serpentir_lab import corpus


@pytest.fixture(scope="module")
def fake_sources(tmp_path_factory):
    """mate and plasma folders laid out as the Debian packages lay them out, with small real photos."""
    root = tmp_path_factory.mktemp("sources")
    mate = root / "mate"
    mate.mkdir()
    base = photo_array("coffee", size=(60, 80), top=100, left=100)
    for i, name in enumerate(corpus.MATE_PHOTOS):
        Image.fromarray(np.roll(base, i, axis=1)).save(mate / f"{name}.jpg", quality=95)
    plasma = root / "plasma"
    for name in corpus.PLASMA_PHOTOS + ("Altai",):  # Altai: a render, not on the kept list
        images = plasma / name / "contents" / "images"
        images.mkdir(parents=True)
        Image.fromarray(base[:30, :40]).save(images / "40x30.jpg", quality=95)
        Image.fromarray(base).save(images / "80x60.jpg", quality=95)
        dark = plasma / name / "contents" / "images_dark"
        dark.mkdir()
        Image.fromarray(255 - base).save(dark / "80x60.jpg")
    return mate, plasma


def _rows(folder):
    with open(folder / corpus.MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def test_build_writes_photos_splits_and_a_true_manifest(fake_sources, tmp_path):
    mate, plasma = fake_sources
    out = tmp_path / "corpus"
    corpus.build_corpus(out, photos=corpus.installed_photos(mate, plasma), progress=False)
    rows = _rows(out)
    names = {r["name"] for r in rows}
    assert {f"mate-{n}" for n in corpus.MATE_PHOTOS} <= names
    assert {f"plasma-{n}" for n in corpus.PLASMA_PHOTOS} <= names
    assert "plasma-Altai" not in names and "skimage-astronaut" in names
    for r in rows:
        written = out / r["split"] / f"{r['name']}.png"
        assert r["split"] == ("val" if r["name"] in corpus.VAL_PHOTOS else "train")
        assert hashlib.sha256(written.read_bytes()).hexdigest() == r["sha256"]
        with Image.open(written) as im:
            assert im.size == (int(r["width"]), int(r["height"])) and im.mode == "RGB"
        if r["package"] == "plasma-workspace-wallpapers":
            # the largest light version, never the dark variant
            assert r["source"].endswith("/images/80x60.jpg")
        if r["source"].startswith("/"):
            with open(r["source"], "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == r["source_sha256"]
    assert {r["split"] for r in rows} == {"train", "val"}
    assert set(corpus.VAL_PHOTOS) <= names


def test_max_side_caps_the_long_side(fake_sources, tmp_path):
    mate, plasma = fake_sources
    out = tmp_path / "small"
    corpus.build_corpus(out, max_side=40, photos=corpus.mate_photos(mate), val_names=("mate-Storm",), progress=False)
    rows = _rows(out)
    assert all(max(int(r["width"]), int(r["height"])) == 40 for r in rows)
    assert all((int(r["source_width"]), int(r["source_height"])) == (80, 60) for r in rows)


def test_existing_corpus_needs_overwrite_and_other_folders_are_refused(fake_sources, tmp_path):
    mate, _ = fake_sources
    photos = corpus.mate_photos(mate)
    out = tmp_path / "c"
    corpus.build_corpus(out, photos=photos, val_names=(), progress=False)
    with pytest.raises(UserError, match="--overwrite"):
        corpus.build_corpus(out, photos=photos, val_names=(), progress=False)
    corpus.build_corpus(out, photos=photos[:3], val_names=(), overwrite=True, progress=False)
    assert len(_rows(out)) == 3 and len(list((out / "train").iterdir())) == 3
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not a corpus"):
        corpus.build_corpus(other, photos=photos, val_names=(), overwrite=True, progress=False)
    assert (other / "keep.txt").read_text() == "mine"


def test_missing_package_is_one_line_naming_apt_get(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(corpus, "MATE_DIR", tmp_path / "absent")
    assert main(["corpus", "build", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "apt-get install mate-backgrounds" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def fake_test_packages(tmp_path_factory):
    """opencv-doc's and visp-images-data's files where the packages put them, as small real photos."""
    root = tmp_path_factory.mktemp("test_packages")
    base = photo_array("astronaut", size=(40, 50), top=60, left=60)
    for folder, files in ((root / "opencv", corpus.OPENCV_PHOTOS), (root / "visp", corpus.VISP_PHOTOS)):
        for i, relative in enumerate(files.values()):
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.roll(base, i, axis=0)).save(folder / relative)
    return root / "opencv", root / "visp"


def test_with_test_holds_out_whole_packages(fake_sources, fake_test_packages, tmp_path, capsys, monkeypatch):
    mate, plasma = fake_sources
    opencv, visp = fake_test_packages
    for name, value in (("MATE_DIR", mate), ("PLASMA_DIR", plasma), ("OPENCV_DIR", opencv), ("VISP_DIR", visp)):
        monkeypatch.setattr(corpus, name, value)
    out = tmp_path / "corpus19"
    assert main(["corpus", "build", str(out), "--with-test"]) == 0
    rows = _rows(out)
    by_split = {s: {r["package"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert by_split["test"] == set(corpus.TEST_PACKAGES)
    assert not (by_split["train"] | by_split["val"]) & set(corpus.TEST_PACKAGES)  # never a photo of them elsewhere
    tests = [r for r in rows if r["split"] == "test"]
    assert len(tests) == len(corpus.OPENCV_PHOTOS) + len(corpus.VISP_PHOTOS) >= 20
    assert all((out / "test" / f"{r['name']}.png").is_file() for r in tests)
    assert {r["name"] for r in rows if r["split"] == "val"} == set(corpus.VAL_PHOTOS)
    assert f"{len(tests)} test" in capsys.readouterr().out


def test_test_packages_never_train(fake_test_packages, tmp_path):
    opencv, visp = fake_test_packages
    photos = corpus.test_photos(opencv, visp)
    with pytest.raises(UserError, match="with_test"):
        corpus.build_corpus(tmp_path / "a", photos=photos, val_names=(), progress=False)
    with pytest.raises(UserError, match="validation photos from a test package"):
        corpus.build_corpus(tmp_path / "b", photos=photos, val_names=("opencv-aloe",), with_test=True, progress=False)
    (opencv / corpus.OPENCV_PHOTOS["dog"]).rename(opencv / "moved.png")
    try:
        with pytest.raises(UserError, match="apt-get install --reinstall opencv-doc"):
            corpus.test_photos(opencv, visp)
    finally:
        (opencv / "moved.png").rename(opencv / corpus.OPENCV_PHOTOS["dog"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
