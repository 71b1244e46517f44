"""What a run learns from: its settings by dotted key, less those its config fields declare not learnt.

Two runs with the same learnt settings learn the same weights, so the workshop names run folders by
a digest of them (a finished run is found again, not retrained) and reports any difference between
compared runs. The declarations live on the fields (config.NOT_LEARNT, config.ADDED_LATER), so a new
setting cannot silently rename every folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator

from .config import TrainConfig, config_to_dict


def flatten_config(config: dict, prefix: str = "") -> dict[str, object]:
    """{'optim.lr': 1e-3, ...}: a config's settings by dotted key (model kwargs and task params stay whole)."""
    out: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict) and key not in ("kwargs", "params"):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_fields(cls: type = TrainConfig, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """(dotted key, field) for every setting of a config class, its sections walked into."""
    for f in dataclasses.fields(cls):
        section = f.default_factory
        if isinstance(section, type) and dataclasses.is_dataclass(section):
            yield from config_fields(section, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def not_learnt_keys() -> tuple[str, ...]:
    """The dotted keys of the settings that say where or how visibly a run goes, not what it learns."""
    return tuple(key for key, f in config_fields() if not f.metadata.get("learnt", True))


def learnt_settings(config: TrainConfig) -> dict[str, object]:
    """The settings that decide what a run learns; a setting added later is left out at its default."""
    fields = dict(config_fields())
    kept = {}
    for key, value in flatten_config(config_to_dict(config)).items():
        f = fields[key]
        if not f.metadata.get("learnt", True):
            continue
        if f.metadata.get("added_later") and value == _default(f):
            continue
        kept[key] = value
    return kept


def learning_digest(config: TrainConfig) -> str:
    """10 hex digits of what a run learns from: every learnt setting, whatever order it was given in."""
    return hashlib.sha256(json.dumps(learnt_settings(config), sort_keys=True, default=str).encode()).hexdigest()[:10]


def _default(f: dataclasses.Field) -> object:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default
