"""Datasets that turn folders of clean photos into (degraded input, clean target) training pairs.

- `ImageFolderDataset`: any folder of images plus a degradation from serpentir.degradations.
  Training items are random crops with random flips / 90-degree rotations and a fresh degradation
  seed; all randomness comes from (seed, epoch, index), so a run replays exactly, whatever the
  number of DataLoader workers. Validation items are centre crops (or whole images) degraded with
  a seed fixed by the image index, so scores are comparable between runs and models.
- `PairedFolderDataset`: already-degraded inputs next to their targets (real blurred photos, say).
- `sample_images_dir()`: a small bundled set of real photos, so training and evaluation run
  offline with nothing to download. The photos are the ones shipped inside installed packages
  (scikit-image always; scikit-learn and matplotlib when installed): astronaut, coffee, chelsea,
  rocket, immunohistochemistry, camera (grey, stored as RGB), a 512x512 crop of
  hubble_deep_field, a 768x768 crop of retina, the left view of stereo_motorcycle, sklearn's
  china and flower, matplotlib's grace_hopper. The photos named in `VAL_PHOTOS` go to `val/`,
  the rest to `train/`. They are written once as PNG (long side capped at `MAX_SIDE`) under
  `$SERPENTIR_CACHE/samples/` (default `~/.cache/serpentir/samples/`), in a folder named after
  the set's version and contents, built in a temporary folder and renamed into place.

Every file is checked when a dataset is built, so a bad file is reported by name before training
starts; a file that still fails to decode later raises a UserError that names it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .degradations import Degradation, reflect_pad
from .errors import UserError
from .image_io import IMAGE_EXTENSIONS, list_images, load_image, verify_image

VAL_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee")
SAMPLES_VERSION = 1
MAX_SIDE = 768
DECODED_CACHE_MB = 256.0  # per dataset copy (each DataLoader worker holds one)


def _checked_files(files: list[Path], skip_bad: bool) -> list[Path]:
    """Files whose header reads; bad ones raise, or are skipped with a warning naming them."""
    good = []
    for path in files:
        try:
            verify_image(path)
            good.append(path)
        except UserError as e:
            if not skip_bad:
                raise
            warnings.warn(f"skipping {e}", stacklevel=3)
    return good


class DecodedImageCache:
    """Decoded images by file index, least recently used dropped first, within a byte budget.

    A training item is a small crop of a large photo: decoding the whole PNG for every crop cost
    more CPU than the model step of serpent-t on 64-pixel crops. Small folders (the bundled
    photos) then decode each file once per worker; a large one keeps only what fits.
    """

    def __init__(self, budget_mb: float) -> None:
        self.budget = int(budget_mb * 2**20)
        self.used = 0
        self.images: OrderedDict[int, Tensor] = OrderedDict()

    def get(self, key: int) -> Tensor | None:
        image = self.images.get(key)
        if image is not None:
            self.images.move_to_end(key)
        return image

    def put(self, key: int, image: Tensor) -> None:
        size = image.numel() * image.element_size()
        if size > self.budget or key in self.images:
            return
        while self.used + size > self.budget:
            _, dropped = self.images.popitem(last=False)
            self.used -= dropped.numel() * dropped.element_size()
        self.images[key] = image
        self.used += size


def _center_crop(img: Tensor, size: int) -> Tensor:
    img = _pad_to_at_least(img, size)
    H, W = img.shape[-2:]
    top, left = (H - size) // 2, (W - size) // 2
    return img[:, top:top + size, left:left + size]


def _pad_to_at_least(img: Tensor, size: int) -> Tensor:
    """Reflect-pad an image smaller than the crop, so small photos still give full-size crops."""
    H, W = img.shape[-2:]
    pad_h, pad_w = max(0, -(-(size - H) // 2)), max(0, -(-(size - W) // 2))
    return reflect_pad(img, pad_h, pad_w) if pad_h or pad_w else img


class ImageFolderDataset(Dataset):
    """Clean images from a folder (recursive), degraded on the fly: items {"input", "target", "name", "seed"}.

    `seed` in an item is the degradation seed, so `task.kernel(item["seed"])` recovers the blur
    kernel (e.g. for Wiener baselines). `repeat` lengthens an epoch for small folders. Decoded
    images are kept in a cache of `cache_mb` (0: decode every time).
    """

    def __init__(self, root: str | Path, task: Degradation, crop_size: int | None = 128, train: bool = True,
                 channels: int = 3, seed: int = 0, skip_bad: bool = False, repeat: int = 1,
                 cache_mb: float = DECODED_CACHE_MB) -> None:
        self.root = Path(root)
        files = list_images(self.root)
        if not files:
            raise UserError(f"{self.root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}, in subfolders too)")
        self.files = _checked_files(files, skip_bad)
        if not self.files:
            raise UserError(f"{self.root}: none of the {len(files)} image files could be read")
        if crop_size is not None and crop_size < 1:
            raise UserError(f"crop_size must be positive, not {crop_size}")
        if repeat < 1:
            raise UserError(f"repeat must be at least 1, not {repeat}")
        self.task, self.crop_size, self.train = task, crop_size, train
        self.channels, self.seed, self.skip_bad, self.repeat = channels, seed, skip_bad, repeat
        self.epoch = 0
        self.cache = DecodedImageCache(cache_mb)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crops, flips and degradation seeds the items use (call before each epoch).

        DataLoader workers hold copies of the dataset: with persistent_workers=True they do not see
        a later set_epoch, so the same epoch would repeat.
        """
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files) * self.repeat

    def _load(self, file_index: int) -> tuple[Tensor, Path]:
        """The decoded image (shared with the cache: never modify it in place) and its path."""
        n = len(self.files)
        for attempt in range(n if self.skip_bad else 1):
            index = (file_index + attempt) % n
            path = self.files[index]
            cached = self.cache.get(index)
            if cached is not None:
                return cached, path
            try:
                image = load_image(path, channels=self.channels)
                self.cache.put(index, image)
                return image, path
            except UserError as e:
                if not self.skip_bad:
                    raise
                warnings.warn(f"skipping {e}")
        raise UserError(f"{self.root}: none of the images could be decoded")

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        target, path = self._load(index % len(self.files))
        if self.train:
            rng = np.random.default_rng([self.seed % 2**63, self.epoch, index])
            if self.crop_size:
                target = _pad_to_at_least(target, self.crop_size)
                H, W = target.shape[-2:]
                top = int(rng.integers(H - self.crop_size + 1))
                left = int(rng.integers(W - self.crop_size + 1))
                target = target[:, top:top + self.crop_size, left:left + self.crop_size]
            turns, flip = int(rng.integers(4)), bool(rng.integers(2))
            target = torch.rot90(target, turns, dims=(1, 2))
            if flip:
                target = target.flip(-1)
            degradation_seed = int(rng.integers(2**31))
        else:
            if self.crop_size:
                target = _center_crop(target, self.crop_size)
            degradation_seed = self.seed * 100003 + index
        target = target.clone(memory_format=torch.contiguous_format)  # never a view into the cache
        return {
            "input": self.task(target, degradation_seed),
            "target": target,
            "name": path.relative_to(self.root).as_posix(),
            "seed": degradation_seed,
        }


class PairedFolderDataset(Dataset):
    """Degraded inputs and clean targets in two folders, matched by relative name (extension may differ).

    Items {"input", "target", "name"}, whole images. Every target needs an input partner; inputs
    without a target are ignored.
    """

    def __init__(self, input_dir: str | Path, target_dir: str | Path, channels: int = 3) -> None:
        self.input_dir, self.target_dir, self.channels = Path(input_dir), Path(target_dir), channels
        targets = list_images(self.target_dir)
        if not targets:
            raise UserError(f"{self.target_dir}: no images found "
                            f"(looked for {', '.join(IMAGE_EXTENSIONS)}, in subfolders too)")
        inputs = list_images(self.input_dir)
        by_name = {p.relative_to(self.input_dir).as_posix(): p for p in inputs}
        by_stem: dict[str, list[Path]] = {}
        for p in inputs:
            by_stem.setdefault(p.relative_to(self.input_dir).with_suffix("").as_posix(), []).append(p)
        self.pairs: list[tuple[Path, Path]] = []
        for target in targets:
            rel = target.relative_to(self.target_dir)
            partner = by_name.get(rel.as_posix())
            if partner is None:
                candidates = by_stem.get(rel.with_suffix("").as_posix(), [])
                if not candidates:
                    raise UserError(f"{target}: no matching input in {self.input_dir} "
                                    f"(expected {rel.as_posix()} or the same name with another extension)")
                if len(candidates) > 1:
                    raise UserError(f"{target}: several possible inputs: {', '.join(str(c) for c in candidates)}")
                partner = candidates[0]
            self.pairs.append((partner, target))
        for partner, target in self.pairs:
            verify_image(partner)
            verify_image(target)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        input_path, target_path = self.pairs[index]
        degraded = load_image(input_path, channels=self.channels)
        target = load_image(target_path, channels=self.channels)
        if degraded.shape != target.shape:
            raise UserError(f"{input_path}: size {degraded.shape[-1]}x{degraded.shape[-2]} differs from its target "
                            f"{target_path} ({target.shape[-1]}x{target.shape[-2]})")
        return {"input": degraded, "target": target, "name": target_path.relative_to(self.target_dir).as_posix()}


# --- bundled sample photos ---


def _skimage(name: str, crop: tuple[slice, slice] | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
            image = image[0]
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        return image[crop] if crop else image

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib.cbook import get_sample_data
    from PIL import Image

    with Image.open(get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


def sample_photo_sources() -> dict[str, Callable[[], np.ndarray]]:
    """Name -> loader for each sample photo whose package is installed (only files shipped in wheels)."""
    photos = {
        "astronaut": _skimage("astronaut"),
        "coffee": _skimage("coffee"),
        "chelsea": _skimage("chelsea"),
        "rocket": _skimage("rocket"),
        "immunohistochemistry": _skimage("immunohistochemistry"),
        "camera": _skimage("camera"),
        "hubble_deep_field": _skimage("hubble_deep_field", (slice(180, 692), slice(244, 756))),
        "retina": _skimage("retina", (slice(260, 1028), slice(120, 888))),
        "motorcycle": _skimage("stereo_motorcycle"),
    }
    if importlib.util.find_spec("sklearn") is not None:
        photos["china"] = _sklearn("china.jpg")
        photos["flower"] = _sklearn("flower.jpg")
    if importlib.util.find_spec("matplotlib") is not None:
        photos["grace_hopper"] = _grace_hopper
    return photos


def _cap_long_side(image: np.ndarray, max_side: int) -> np.ndarray:
    from PIL import Image

    H, W = image.shape[:2]
    if max(H, W) <= max_side:
        return image
    scale = max_side / max(H, W)
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def sample_images_dir(cache_dir: str | Path | None = None) -> Path:
    """The folder of bundled sample photos (train/ and val/ subfolders), written on first use."""
    from PIL import Image

    sources = sample_photo_sources()
    contents = hashlib.sha1(",".join(sorted(sources)).encode()).hexdigest()[:8]
    base = Path(cache_dir or os.environ.get("SERPENTIR_CACHE") or Path.home() / ".cache" / "serpentir")
    final = base / "samples" / f"v{SAMPLES_VERSION}-{contents}"
    if final.is_dir():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
    except OSError as e:
        raise UserError(f"{final.parent}: cannot write the sample photos there ({e.strerror}); "
                        "set SERPENTIR_CACHE to a writable folder") from None
    try:
        for name, load in sources.items():
            split = building / ("val" if name in VAL_PHOTOS else "train")
            split.mkdir(exist_ok=True)
            Image.fromarray(_cap_long_side(np.ascontiguousarray(load()), MAX_SIDE)).save(split / f"{name}.png")
        try:
            os.rename(building, final)
        except OSError:
            if not final.is_dir():  # not a lost race with another process building the same set
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final
