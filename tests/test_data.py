"""Datasets: deterministic pairs, crops and seeds, clear errors for bad folders and files, sample photos."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from real_photos import photo_array
from serpentir.data import (
    MAX_SIDE,
    VAL_PHOTOS,
    DecodedImageCache,
    ImageFolderDataset,
    PairedFolderDataset,
    sample_images_dir,
    sample_photo_sources,
)
from serpentir.degradations import get_task
from serpentir.errors import UserError
from serpentir.image_io import list_images, load_image


@pytest.fixture
def folder(tmp_path):
    """Three real photo crops, one in a subfolder and one smaller than the crop size."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(photo_array("chelsea", (80, 100), 100, 150)).save(root / "cat.png")
    Image.fromarray(photo_array("coffee", (90, 70), 150, 250)).save(root / "sub" / "cup.jpg", quality=95)
    Image.fromarray(photo_array("astronaut", (20, 30), 100, 200)).save(root / "tiny.bmp")
    return root


def _items(ds):
    return [ds[i] for i in range(len(ds))]


def test_train_items_are_deterministic_and_consistent(folder):
    task = get_task("motion_deblur")
    ds = ImageFolderDataset(folder, task, crop_size=32, seed=1, repeat=2)
    assert len(ds) == 6
    items = _items(ds)
    assert [it["name"] for it in items[:3]] == ["cat.png", "sub/cup.jpg", "tiny.bmp"]
    for it in items:
        assert it["input"].shape == it["target"].shape == (3, 32, 32)
        assert torch.equal(it["input"], task(it["target"], it["seed"]))  # the seed replays the degradation
    again = _items(ImageFolderDataset(folder, task, crop_size=32, seed=1, repeat=2))
    assert all(torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"]) for a, b in zip(items, again))
    assert not torch.equal(items[0]["target"], items[3]["target"])  # a repeat is a different crop
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["target"], items[0]["target"])
    other = ImageFolderDataset(folder, task, crop_size=32, seed=2, repeat=2)
    assert not torch.equal(other[0]["input"], items[0]["input"])


def test_train_crop_is_a_flipped_or_rotated_piece_of_the_photo(folder):
    ds = ImageFolderDataset(folder, get_task("denoise"), crop_size=24, seed=0)
    full = load_image(folder / "cat.png").numpy()
    crop = ds[0]["target"].numpy()
    windows = np.lib.stride_tricks.sliding_window_view(full, (3, 24, 24))[0]
    variants = [np.rot90(v, k, axes=(1, 2)) for v in (crop, crop[:, :, ::-1]) for k in range(4)]
    assert any((windows == v).all(axis=(-3, -2, -1)).any() for v in variants)


def test_dataloader_workers_give_the_same_items(folder):
    ds = ImageFolderDataset(folder, get_task("inpaint"), crop_size=32, seed=3)
    direct = torch.stack([ds[i]["input"] for i in range(len(ds))])
    batch = next(iter(DataLoader(ds, batch_size=3, num_workers=1)))
    assert batch["input"].shape == (3, 4, 32, 32)
    assert torch.equal(batch["input"], direct)


@pytest.mark.parametrize("train", [True, False])
def test_decoded_cache_changes_nothing_and_items_never_alias_it(folder, train):
    task = get_task("denoise")
    cached = ImageFolderDataset(folder, task, crop_size=None if not train else 32, train=train, seed=4)
    fresh = ImageFolderDataset(folder, task, crop_size=None if not train else 32, train=train, seed=4, cache_mb=0)
    first = [cached[i] for i in range(3)]
    assert len(cached.cache.images) == 3 and len(fresh.cache.images) == 0
    for it in first:
        it["target"].fill_(0.5)  # a caller scribbling on its item must not reach the cache
    for i in range(3):
        a, b = cached[i], fresh[i]
        assert torch.equal(a["target"], b["target"]) and torch.equal(a["input"], b["input"])
        assert not torch.equal(a["target"], first[i]["target"])


def test_decoded_cache_keeps_the_most_recent_within_its_budget():
    cache = DecodedImageCache(budget_mb=3 * 4 * 2**10 / 2**20)  # room for three 1024-float images
    for key in range(4):
        cache.put(key, torch.full((1024,), float(key)))
    assert list(cache.images) == [1, 2, 3] and cache.used == 3 * 4096
    assert cache.get(1)[0] == 1.0  # touching 1 makes 2 the oldest
    cache.put(4, torch.zeros(1024))
    assert list(cache.images) == [3, 1, 4]
    cache.put(5, torch.zeros(2048 * 4))  # bigger than the whole budget: not kept, nothing evicted
    assert list(cache.images) == [3, 1, 4] and cache.get(5) is None


def test_validation_items_are_centre_crops_with_index_seeds(folder):
    task = get_task("denoise")
    ds = ImageFolderDataset(folder, task, crop_size=32, train=False, seed=7)
    it = ds[0]
    full = load_image(folder / "cat.png")
    assert torch.equal(it["target"], full[:, 24:56, 34:66])
    assert it["seed"] == 7 * 100003 + 0 and torch.equal(it["input"], task(it["target"], it["seed"]))
    assert torch.equal(ds[0]["input"], it["input"])
    whole = ImageFolderDataset(folder, task, crop_size=None, train=False)
    assert whole[1]["target"].shape == (3, 90, 70)
    assert ds[2]["target"].shape == (3, 32, 32)  # the 20x30 photo, reflect-padded


def test_greyscale_channels(folder):
    ds = ImageFolderDataset(folder, get_task("sr2"), crop_size=16, channels=1)
    assert ds[0]["input"].shape == ds[0]["target"].shape == (1, 16, 16)


def test_empty_or_missing_folder_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no photos here")
    with pytest.raises(UserError, match=r"empty: no images found"):
        ImageFolderDataset(tmp_path / "empty", get_task("denoise"))
    with pytest.raises(UserError, match=r"nowhere: no such folder"):
        ImageFolderDataset(tmp_path / "nowhere", get_task("denoise"))


def test_bad_file_is_named_at_construction_or_skipped(folder):
    (folder / "notes.png").write_text("not a picture")
    with pytest.raises(UserError, match=r"notes\.png: not an image file"):
        ImageFolderDataset(folder, get_task("denoise"))
    with pytest.warns(UserWarning, match=r"notes\.png"):
        ds = ImageFolderDataset(folder, get_task("denoise"), skip_bad=True)
    assert len(ds) == 3


def test_file_that_fails_only_when_decoded_is_named(folder):
    data = (folder / "sub" / "cup.jpg").read_bytes()
    (folder / "sub" / "cup.jpg").write_bytes(data[: len(data) // 3])  # header fine, scan data cut
    ds = ImageFolderDataset(folder, get_task("denoise"), crop_size=16)
    with pytest.raises(UserError, match=r"cup\.jpg: broken or truncated image"):
        ds[1]
    with pytest.raises(UserError, match=r"cup\.jpg: broken or truncated image"):
        list(DataLoader(ds, batch_size=1, num_workers=1))
    skipping = ImageFolderDataset(folder, get_task("denoise"), crop_size=16, skip_bad=True)
    with pytest.warns(UserWarning, match=r"cup\.jpg"):
        assert skipping[1]["name"] == "tiny.bmp"


def test_paired_folders_match_by_name_across_extensions(tmp_path):
    inputs, targets = tmp_path / "blurred", tmp_path / "sharp"
    (inputs / "day").mkdir(parents=True)
    (targets / "day").mkdir(parents=True)
    a, b = photo_array("chelsea", (40, 50)), photo_array("coffee", (40, 50))
    Image.fromarray(a).save(targets / "day" / "a.png")
    Image.fromarray(a // 2).save(inputs / "day" / "a.bmp")
    Image.fromarray(b).save(targets / "b.png")
    Image.fromarray(b // 2).save(inputs / "b.png")
    Image.fromarray(b).save(inputs / "extra.png")  # inputs without a target are ignored
    ds = PairedFolderDataset(inputs, targets)
    assert [it["name"] for it in _items(ds)] == ["b.png", "day/a.png"]
    torch.testing.assert_close(ds[1]["input"], load_image(inputs / "day" / "a.bmp"))
    torch.testing.assert_close(ds[1]["target"], load_image(targets / "day" / "a.png"))

    Image.fromarray(a).save(targets / "c.png")
    with pytest.raises(UserError, match=r"c\.png: no matching input in .*blurred"):
        PairedFolderDataset(inputs, targets)
    Image.fromarray(a[:20]).save(inputs / "c.png")
    ds = PairedFolderDataset(inputs, targets)
    with pytest.raises(UserError, match=r"c\.png: size 50x20 differs from its target"):
        ds[1]


def test_sample_images_are_built_once_with_train_and_val(tmp_path, monkeypatch):
    monkeypatch.setenv("SERPENTIR_CACHE", str(tmp_path))
    root = sample_images_dir()
    assert root.parent == tmp_path / "samples"
    assert [p.name for p in root.parent.iterdir()] == [root.name]  # no temporary build folder left
    val = [p.stem for p in list_images(root / "val")]
    train = [p.stem for p in list_images(root / "train")]
    assert sorted(val) == sorted(VAL_PHOTOS)
    assert not set(val) & set(train) and len(train) >= 6
    assert set(val) | set(train) == set(sample_photo_sources())
    for path in list_images(root):
        with Image.open(path) as im:
            assert im.mode == "RGB" and max(im.size) <= MAX_SIDE
    stamp = (root / "val" / "astronaut.png").stat().st_mtime_ns
    assert sample_images_dir() == root and (root / "val" / "astronaut.png").stat().st_mtime_ns == stamp
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = ImageFolderDataset(root / "val", get_task("sr4"), crop_size=64, train=False)
    assert ds[0]["input"].shape == (3, 64, 64)
