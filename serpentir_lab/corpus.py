"""A training corpus of real photographs, gathered from what is installed: `serpentir corpus build DIR`.

The bundled sample photos (data.py) are seven small images; restoring real photos needs many
megapixels of real scenes. Debian packages ship real photographs as desktop wallpapers, pip
packages a few small ones:
- `mate-backgrounds`: the 12 nature photos in /usr/share/backgrounds/mate/nature/;
- `plasma-workspace-wallpapers`: the wallpapers named in `PLASMA_PHOTOS` (the others are renders and
  drawings, left out by name), each once, in its largest version (the original);
- scikit-image, scikit-learn and matplotlib: the colour photos in `PIP_PHOTOS` they ship.
Licences are in /usr/share/doc/PACKAGE/copyright (mostly GPL-2+ and CC-BY-SA-4.0).

Whole photos named in `VAL_PHOTOS` form the `val/` split (never cropped into training); the rest
go to `train/`. With `with_test`, a `test/` split is added from packages that give nothing to train
or val (issue 19's protocol: whole packages held out, at least 20 photos, every one at least 512 px
on its short side for 512-px test crops): `opencv-doc` (the photographs among OpenCV's examples and
tutorial images, `OPENCV_PHOTOS`; images with drawn overlays, composites, screenshots and
near-duplicate pairs are left out by name) and `visp-images-data` (`VISP_PHOTOS`: the 1927 Solvay
photograph and a photographed Klimt painting). The lomiri-wallpapers packages are reserved for
independent checks and never gathered.

Every photo is written as an 8-bit RGB PNG (long side capped at `max_side` when given, Lanczos: the
wallpapers are JPEGs, and downscaling also averages away their compression noise), and
`manifest.csv` lists its split, source package, source file, size and the sha256 of both the source
and the written PNG. The corpus is built in a temporary folder and renamed into
place, so an interrupted build leaves nothing half-written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from serpentir.errors import UserError

MATE_DIR = Path("/usr/share/backgrounds/mate/nature")
PLASMA_DIR = Path("/usr/share/wallpapers")
MATE_PHOTOS = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
               "TwoWings", "Wood", "YellowFlower")
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
                 "OneStandsOut", "Path", "SafeLanding", "summer_1am", "Volna")
PIP_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "china", "flower", "grace_hopper")
# Held out whole: two photos of each wallpaper package (macro, landscape, objects) and the three
# sample photos the bundled models were always validated on.
VAL_PHOTOS = ("mate-LadyBird", "mate-Storm", "plasma-ColorfulCups", "plasma-Kite",
              "skimage-astronaut", "skimage-chelsea", "skimage-coffee")
OPENCV_DIR = Path("/usr/share/doc/opencv-doc")
# name -> file under OPENCV_DIR; one of each stereo or exposure pair (aloeR, leuvenB, graf3 are left out)
OPENCV_PHOTOS = {
    "aloe": "examples/data/aloeL.jpg", "apple": "examples/data/apple.jpg", "baboon": "examples/data/baboon.jpg",
    "building": "examples/data/building.jpg", "dog": "examples/data/chicky_512.png",
    "notebook": "examples/data/ela_original.jpg", "graffiti": "examples/data/graf1.png",
    "leuven": "examples/data/leuvenA.jpg", "orange": "examples/data/orange.jpg", "lightbox": "examples/data/pca_test1.jpg",
    "scene01": "examples/text/scenetext01.jpg", "scene02": "examples/text/scenetext02.jpg",
    "scene03": "examples/text/scenetext03.jpg", "scene04": "examples/text/scenetext04.jpg",
    "scene05": "examples/text/scenetext05.jpg", "portrait": "opencv4/html/230501201_1.jpg",
    "barcodes": "opencv4/html/4_barcodes.jpg", "webcam": "opencv4/html/Threshold_inRange_Tutorial_Result_input.jpeg",
    "newspaper": "opencv4/html/affinepano.jpg",
}
VISP_DIR = Path("/usr/share/visp-images-data/ViSP-images")
VISP_PHOTOS = {"solvay1927": "Solvay/Solvay_conference_1927_Version2_2126x1463.png", "klimt": "Klimt/Klimt.png"}
TEST_PACKAGES = ("opencv-doc", "visp-images-data")
MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("name", "split", "package", "source", "width", "height", "source_width", "source_height",
                   "source_sha256", "sha256")
_PIP_PACKAGE = {"china": "scikit-learn", "flower": "scikit-learn", "grace_hopper": "matplotlib"}
_PREFIX = {"scikit-image": "skimage", "scikit-learn": "sklearn", "matplotlib": "matplotlib"}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Photo:
    """One photograph to gather: its corpus name, where it comes from, and how to read its pixels."""

    name: str
    package: str
    source: str
    read: Callable[[], bytes | np.ndarray]


def _missing(package: str, folder: Path) -> UserError:
    return UserError(f"{folder}: not found; the corpus needs the Debian package {package} "
                     f"(install it with: apt-get install {package})")


def mate_photos(folder: Path | None = None) -> list[Photo]:
    """The nature photos of mate-backgrounds (one file each); folder: MATE_DIR unless given."""
    folder = Path(folder or MATE_DIR)
    if not folder.is_dir():
        raise _missing("mate-backgrounds", folder)
    photos = []
    for name in MATE_PHOTOS:
        files = [p for p in sorted(folder.glob(f"{name}.*")) if p.suffix.lower() in _IMAGE_SUFFIXES]
        if not files:
            raise UserError(f"{folder}: {name} is missing (reinstall with: apt-get install --reinstall mate-backgrounds)")
        photos.append(Photo(f"mate-{name}", "mate-backgrounds", str(files[0]), files[0].read_bytes))
    return photos


def _pixels(path: Path) -> int:
    try:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]
    except OSError as e:
        raise UserError(f"{path}: not a readable image ({e})") from None


def plasma_photos(folder: Path | None = None) -> list[Photo]:
    """The photographs among the plasma wallpapers, each in its largest version (light variant only);
    folder: PLASMA_DIR unless given."""
    folder = Path(folder or PLASMA_DIR)
    if not folder.is_dir():
        raise _missing("plasma-workspace-wallpapers", folder)
    photos = []
    for name in PLASMA_PHOTOS:
        files = [p for p in sorted((folder / name / "contents" / "images").glob("*")) if p.suffix.lower() in _IMAGE_SUFFIXES]
        if not files:
            raise UserError(f"{folder / name}: no images (reinstall with: apt-get install --reinstall "
                            "plasma-workspace-wallpapers)")
        largest = max(files, key=_pixels)
        photos.append(Photo(f"plasma-{name}", "plasma-workspace-wallpapers", str(largest), largest.read_bytes))
    return photos


def pip_photos() -> list[Photo]:
    """The colour photographs shipped inside installed pip packages (scikit-image always)."""
    from serpentir.data import sample_photo_sources

    sources = sample_photo_sources()
    photos = []
    for name in PIP_PHOTOS:
        if name in sources:
            package = _PIP_PACKAGE.get(name, "scikit-image")
            photos.append(Photo(f"{_PREFIX[package]}-{name}", package, f"{package}:{name}", sources[name]))
    return photos


def _named_files(package: str, folder: Path, files: dict[str, str], prefix: str) -> list[Photo]:
    if not folder.is_dir():
        raise _missing(package, folder)
    photos = []
    for name, relative in files.items():
        path = folder / relative
        if not path.is_file():
            raise UserError(f"{path}: missing (reinstall with: apt-get install --reinstall {package})")
        photos.append(Photo(f"{prefix}-{name}", package, str(path), path.read_bytes))
    return photos


def test_photos(opencv_dir: Path | None = None, visp_dir: Path | None = None) -> list[Photo]:
    """The held-out test packages' photos (`OPENCV_PHOTOS`, `VISP_PHOTOS`); folders: the install's unless given."""
    return (_named_files("opencv-doc", Path(opencv_dir or OPENCV_DIR), OPENCV_PHOTOS, "opencv")
            + _named_files("visp-images-data", Path(visp_dir or VISP_DIR), VISP_PHOTOS, "visp"))


def installed_photos(mate_dir: Path | None = None, plasma_dir: Path | None = None) -> list[Photo]:
    """Every photo the corpus gathers; a missing Debian package is a UserError naming its apt-get command."""
    return mate_photos(mate_dir) + plasma_photos(plasma_dir) + pip_photos()


def _decode(photo: Photo) -> tuple[np.ndarray, str]:
    """RGB uint8 pixels and the sha256 of the source (file bytes, or raw pixels for pip photos)."""
    data = photo.read()
    if isinstance(data, bytes):
        digest = hashlib.sha256(data).hexdigest()
        try:
            with Image.open(io.BytesIO(data)) as im:
                array = np.asarray(im.convert("RGB"))
        except OSError as e:
            raise UserError(f"{photo.source}: cannot decode ({e})") from None
    else:
        array = np.ascontiguousarray(data)
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        array = np.ascontiguousarray(array[:, :, :3]).astype(np.uint8)
        digest = hashlib.sha256(array.tobytes()).hexdigest()
    return array, digest


def _cap(array: np.ndarray, max_side: int | None) -> np.ndarray:
    H, W = array.shape[:2]
    if max_side is None or max(H, W) <= max_side:
        return array
    scale = max_side / max(H, W)
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))


def build_corpus(out_dir: str | Path, *, max_side: int | None = None, photos: list[Photo] | None = None,
                 val_names: tuple[str, ...] = VAL_PHOTOS, with_test: bool = False,
                 test_packages: tuple[str, ...] = TEST_PACKAGES, overwrite: bool = False, progress: bool = True) -> Path:
    """Write the photos as train/ and val/ (and test/) PNGs plus manifest.csv into out_dir; returns the manifest path.

    photos: what to gather (default: `installed_photos()`, plus `test_photos()` with_test); tests pass
    photos from a fake folder. Every photo of a package in test_packages goes to test/ (with_test only).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    if max_side is not None and max_side < 16:
        raise UserError(f"--max-side must be at least 16 pixels, not {max_side}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise UserError(f"{out_dir}: not empty; choose a new folder or pass --overwrite to replace the corpus there")
    if overwrite and out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise UserError(f"{out_dir}: not a corpus (no {MANIFEST}); refusing to replace it")
    if photos is None:
        photos = installed_photos() + (test_photos() if with_test else [])
    test_set = set(test_packages) if with_test else set()
    if with_test and not any(p.package in test_set for p in photos):
        raise UserError(f"no photos of the test packages ({', '.join(test_packages)}) among the sources")
    if not with_test and any(p.package in set(test_packages) for p in photos):
        raise UserError(f"photos of the test packages ({', '.join(test_packages)}) need with_test: "
                        "they would otherwise train")
    names = [p.name for p in photos]
    if len(set(names)) != len(names):
        raise UserError("two photos share a name: " + ", ".join(sorted({n for n in names if names.count(n) > 1})))
    test_val = [p.name for p in photos if p.name in val_names and p.package in test_set]
    if test_val:
        raise UserError(f"validation photos from a test package: {', '.join(test_val)}")
    missing_val = [n for n in val_names if n not in names]
    if missing_val:
        raise UserError(f"validation photos not found among the sources: {', '.join(missing_val)}")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.building-"))
    try:
        rows = []
        for photo in tqdm(photos, desc="corpus", unit="photo", disable=not progress):
            array, source_sha = _decode(photo)
            out = _cap(array, max_side)
            split = "test" if photo.package in test_set else "val" if photo.name in val_names else "train"
            (building / split).mkdir(exist_ok=True)
            target = building / split / f"{photo.name}.png"
            Image.fromarray(out).save(target)
            rows.append({"name": photo.name, "split": split, "package": photo.package, "source": photo.source,
                         "width": out.shape[1], "height": out.shape[0], "source_width": array.shape[1],
                         "source_height": array.shape[0], "source_sha256": source_sha,
                         "sha256": hashlib.sha256(target.read_bytes()).hexdigest()})
        with open(building / MANIFEST, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        if out_dir.is_dir():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
            os.rename(out_dir, old / "corpus")
            os.rename(building, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(building, out_dir)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return out_dir / MANIFEST


def read_manifest(corpus_dir: str | Path) -> list[dict]:
    """The rows of a corpus' manifest.csv (values as strings)."""
    path = Path(corpus_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path}: not found; build a corpus with `serpentir corpus build {corpus_dir}`")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
