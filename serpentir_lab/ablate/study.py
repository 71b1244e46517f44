"""A study file: one question, a base training config, and the variants that each change one knob.

    study: directions                     # a name, used in titles
    question: Do four scan directions beat one or two?
    base: base.yaml                       # a `serpentir train` config, relative to this file
    set: [task.name=gaussian_deblur]      # optional: overrides for every variant
    variants:                             # in order; names of lower-case letters, digits, - and _
      d1: [model.kwargs.directions=1]
      d4: []                              # the base itself
    test_dir: null                        # optional: the photos scored (default: the base's data.val_dir)
    test_crop: 512                        # optional: score each test photo's centre 512-px square (null: whole)

Variants named `<arm>-s<seed>` are seeds of one arm; the report compares arms with the first one by
per-photo paired differences. `val_dir` is the deprecated name of `test_dir`. The classical reference
is tuned on the base's data.val_dir (the validation split), never on test photos that differ from it.

Each variant's config is the base, then the study's `set`, then the variant's overrides, then the
command line's (which win). A variant's run folder is named by its model and a digest of what it
learns from, so an identical variant in two studies (the base, typically) is trained once and shared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from serpentir.errors import UserError
from serpentir.strict_yaml import load_yaml_file
from serpentir.train import TrainConfig, apply_override, config_from_dict, learning_digest, validate_config

_NAME = re.compile(r"^[a-z0-9_-]+$")
_KEYS = {"study", "question", "base", "set", "variants", "test_dir", "test_crop", "val_dir"}


@dataclass
class Variant:
    """One arm of a study: its name, the overrides that make it, and the resolved training config."""

    name: str
    overrides: list[str]
    config: TrainConfig

    @property
    def digest(self) -> str:
        return learning_digest(self.config)


@dataclass
class Study:
    """A parsed study file, every variant resolved and validated."""

    path: Path
    name: str
    question: str
    variants: list[Variant]
    test_dir: Path  # the photos scored
    tune_dir: Path  # the validation split: the classical reference's strength is chosen on it
    test_crop: int | None = None  # score the centre square of this side of each test photo (None: whole)
    notes: tuple[str, ...] = ()  # what a reader of the report must know about the study file itself

    def run_dir(self, variant: Variant, runs_dir: Path) -> Path:
        """RUNS/<model>-<digest>: the same folder for the same variant in any study, whatever it is called."""
        return Path(runs_dir) / f"{variant.config.model.name}-{variant.digest}"


def _check_buildable(config: TrainConfig) -> None:
    """Build the variant's model without memory (meta device): a misspelt model option fails now, not mid-study."""
    import torch

    from serpentir.models import create_model

    try:
        with torch.device("meta"):
            create_model(config.model.name, **config.model.kwargs)
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"model {config.model.name} with {config.model.kwargs}: {e}") from None


def _overrides(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise UserError(f"{where}: expected a list of key=value overrides, got {value!r}")
    return value


def load_study(path: str | Path, extra: list[str] | None = None) -> Study:
    """Parse and check a study file; extra: command-line overrides applied to every variant last."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"study file not found: {path}")
    data = load_yaml_file(path)  # a key given twice (a lost variant) is refused
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with study, base and variants")
    unknown = set(data) - _KEYS
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_KEYS))})")
    for key in ("study", "base", "variants"):
        if not data.get(key):
            raise UserError(f"{path}: missing {key!r}")
    base_path = (path.parent / str(data["base"])).resolve()
    if not base_path.is_file():
        raise UserError(f"{path}: base config not found: {base_path}")
    base = load_yaml_file(base_path) or {}
    shared = _overrides(data.get("set"), f"{path}: set")
    if not isinstance(data["variants"], dict):
        raise UserError(f"{path}: variants must map names to lists of overrides")
    variants = []
    for name, own in data["variants"].items():
        name = str(name)
        if not _NAME.match(name):
            raise UserError(f"{path}: variant name {name!r} must be lower-case letters, digits, - or _")
        own = _overrides(own, f"{path}: variant {name}")
        resolved = json.loads(json.dumps(base))  # a deep copy
        try:
            for item in shared + own + list(extra or []):
                apply_override(resolved, item)
            config = config_from_dict(resolved)
            validate_config(config)
            _check_buildable(config)
        except UserError as e:
            raise UserError(f"{path}: variant {name}: {e}") from None
        variants.append(Variant(name, own, config))
    test_dir, test_crop, notes = _test_split(path, data, variants[0].config)
    return Study(path=path, name=str(data["study"]), question=str(data.get("question", "")), variants=variants,
                 test_dir=test_dir, tune_dir=_validation_split(variants[0].config), test_crop=test_crop,
                 notes=notes)


def _validation_split(config: TrainConfig) -> Path:
    """The folder training validates on: the base's data.val_dir, else the bundled sample photos' val/."""
    from serpentir.data import sample_images_dir

    return Path(config.data.val_dir) if config.data.val_dir else sample_images_dir() / "val"


def _test_split(path: Path, data: dict, base: TrainConfig) -> tuple[Path, int | None, tuple[str, ...]]:
    """test_dir (or its deprecated name val_dir, then the base's data.val_dir), test_crop, and notes."""
    notes: tuple[str, ...] = ()
    if data.get("test_dir") and data.get("val_dir"):
        raise UserError(f"{path}: give test_dir only (val_dir is its deprecated name), not both")
    if data.get("val_dir"):
        notes = ("the study file names its test photos with `val_dir`, the deprecated name of `test_dir`",)
    test_dir = data.get("test_dir") or data.get("val_dir") or base.data.val_dir
    if not test_dir:
        raise UserError(f"{path}: no test photos: set test_dir, or data.val_dir in the base config")
    crop = data.get("test_crop")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
        raise UserError(f"{path}: test_crop must be a positive whole number of pixels or null, not {crop!r}")
    return Path(test_dir), crop, notes
