"""A study file: one question, a base training config, and the variants that each change one knob.

    study: directions                     # a name, used in titles
    question: Do four scan directions beat one or two?
    base: base.yaml                       # a `serpentir train` config, relative to this file
    set: [task.name=gaussian_deblur]      # optional: overrides for every variant
    variants:                             # in order; names of lower-case letters, digits, - and _
      d1: [model.kwargs.directions=1]
      d4: []                              # the base itself
    val_dir: null                         # optional: held-out whole photos (default: the base's data.val_dir)

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
_KEYS = {"study", "question", "base", "set", "variants", "val_dir"}


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
    val_dir: Path

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
    val_dir = data.get("val_dir") or variants[0].config.data.val_dir
    if not val_dir:
        raise UserError(f"{path}: no held-out photos: set val_dir, or data.val_dir in the base config")
    return Study(path=path, name=str(data["study"]), question=str(data.get("question", "")), variants=variants,
                 val_dir=Path(val_dir))
