"""Training configuration: dataclasses <-> YAML, with dotted command-line overrides.

Dataclasses (not free dicts) so that a typo such as `optim.lrr=1e-3` is a one-line error naming the
key instead of a silently ignored setting, and so that every value has a known type to coerce to
(YAML reads `1e-3` as a string; the field says it is a float).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Union

import yaml

from ..errors import UserError
from ..strict_yaml import load_yaml_file

LOSSES = ("l1", "charbonnier", "psnr")
AMP_MODES = ("none", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")

# Field metadata saying what a setting is to a run's identity (serpentir.train.learnt reads them):
# NOT_LEARNT: where or how visibly a run goes, not what it learns from (two runs that differ only here
# learn the same weights). ADDED_LATER: a setting added after run folders were first named by the
# digest of what they learn; left out while at its default, so those folders keep their names. Give
# every new field ADDED_LATER (or NOT_LEARNT): tests/test_learnt.py checks it.
NOT_LEARNT = MappingProxyType({"learnt": False})
ADDED_LATER = MappingProxyType({"added_later": True})


@dataclass
class ModelSection:
    """Which registered architecture to train; kwargs override its registered defaults."""

    name: str = "serpent-t"
    kwargs: dict = field(default_factory=dict)


@dataclass
class TaskSection:
    """Which degradation to learn to undo (see serpentir.degradations.list_tasks())."""

    name: str = "gaussian_deblur"
    params: dict = field(default_factory=dict)


@dataclass
class DataSection:
    """Where the images come from and how they are cut; None dirs mean the bundled sample photos."""

    train_dir: Union[str, None] = None
    val_dir: Union[str, None] = None
    channels: int = 3
    crop_size: int = 64
    val_crop_size: Union[int, None] = 128
    max_val_images: Union[int, None] = None
    batch_size: int = 8  # per process: the global batch is batch_size x world size
    num_workers: int = field(default=2, metadata=NOT_LEARNT)
    repeat: int = 1
    skip_bad: bool = False
    # decoded training photos kept in memory, per DataLoader worker (large corpora: more). A cache, so not
    # what is learnt, but digests named run folders with it from the start: marking it would rename them all
    cache_mb: float = 256.0


@dataclass
class OptimSection:
    """AdamW with linear warm-up then cosine decay to min_lr; the loss and the gradient clip."""

    lr: float = 2e-4
    min_lr: float = 1e-6
    weight_decay: float = 1e-4
    betas: list = field(default_factory=lambda: [0.9, 0.99])
    warmup_steps: int = 100
    grad_clip: Union[float, None] = 1.0
    loss: str = "l1"  # psnr: each image's own log-MSE, so mild degradations weigh as much as noise
    charbonnier_eps: float = 1e-3
    fft_weight: float = field(default=0.0, metadata=ADDED_LATER)  # adds this x L1 of the 2-D spectra (the deblurring literature's frequency term)


@dataclass
class TrainConfig:
    """Everything a training run needs; saved beside its checkpoints so a run can be reproduced."""

    model: ModelSection = field(default_factory=ModelSection)
    task: TaskSection = field(default_factory=TaskSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    steps: int = 2000
    ema_decay: float = 0.999  # 0 turns the EMA off
    amp: str = "none"  # bf16 autocast (CUDA, or a CPU with native bf16) / fp16 (CUDA only)
    val_every: int = field(default=500, metadata=NOT_LEARNT)
    ckpt_every: int = field(default=1000, metadata=NOT_LEARNT)
    log_every: int = field(default=10, metadata=NOT_LEARNT)
    lpips_every_val: bool = field(default=False, metadata=NOT_LEARNT)  # LPIPS is slow: by default only at the end
    lpips_at_end: bool = field(default=True, metadata=NOT_LEARNT)
    seed: int = 0
    out_dir: str = field(default="runs/serpent-t_gaussian_deblur", metadata=NOT_LEARNT)
    # true: out_dir's last checkpoint if there is one; or a path
    resume: Union[bool, str] = field(default=False, metadata=NOT_LEARNT)
    init_from: Union[str, None] = None  # fine-tuning: start from these weights (EMA if present), fresh optimizer
    # stop with a checkpoint once this many minutes of stepping have passed (a lent GPU, a session's end);
    # `resume: true` then continues exactly where it stopped
    time_limit_min: Union[float, None] = field(default=None, metadata=NOT_LEARNT)
    # equal wall-clock comparisons: train for this many minutes of stepping (data, forward, backward,
    # update; not validation or checkpoints), measured in this process, the rate decaying by the share
    # spent; `steps` is then a cap. Unlike time_limit_min this is the run's length, not an interruption
    time_budget_min: Union[float, None] = field(default=None, metadata=ADDED_LATER)
    device: str = field(default="auto", metadata=NOT_LEARNT)
    tensorboard: bool = field(default=True, metadata=NOT_LEARNT)
    progress: bool = field(default=True, metadata=NOT_LEARNT)




# Fields whose contents are free-form keyword arguments of something else (the model, the task).
_FREE_FORM = {(ModelSection, "kwargs"), (TaskSection, "params")}


def config_to_dict(config: TrainConfig) -> dict:
    """Plain nested dicts/lists, ready for YAML or JSON."""
    return dataclasses.asdict(config)


def config_from_dict(data: dict) -> TrainConfig:
    """Build a config from nested dicts, rejecting unknown keys and coercing values to field types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"a config is a mapping of keys to values, got {type(data).__name__}")
    return _build(TrainConfig, data, prefix="")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """The config in `path` (defaults when None) with `key.sub=value` overrides applied, validated."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file not found: {path}")
        data = load_yaml_file(path) or {}  # a key given twice is refused, with its line
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a mapping of keys to values at the top level")
    for item in overrides or []:
        apply_override(data, item)
    config = config_from_dict(data)
    validate_config(config)
    return config


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the config as YAML (key order as in the dataclasses, so it reads like the defaults)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def apply_override(data: dict, item: str) -> None:
    """Set `a.b.c=value` in nested dicts; the value is parsed as YAML (so 3, true, null, [1,2] work)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"bad override {item!r}: expected key=value, e.g. optim.lr=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(f"bad override {item!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def validate_config(config: TrainConfig) -> None:
    """Range checks that types alone cannot express, each a one-line UserError."""
    d, o = config.data, config.optim
    positive = {"steps": config.steps, "data.crop_size": d.crop_size, "data.batch_size": d.batch_size,
                "data.repeat": d.repeat, "val_every": config.val_every,
                "ckpt_every": config.ckpt_every, "log_every": config.log_every}
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"config key {key} must be a positive integer, got {value}")
    for key, value in {"data.num_workers": d.num_workers, "optim.warmup_steps": o.warmup_steps,
                       "data.cache_mb": d.cache_mb}.items():
        if value < 0:
            raise UserError(f"config key {key} must be >= 0, got {value}")
    if d.channels not in (1, 3):
        raise UserError(f"config key data.channels must be 1 (grey) or 3 (RGB), got {d.channels}")
    for key, value in {"data.val_crop_size": d.val_crop_size, "data.max_val_images": d.max_val_images}.items():
        if value is not None and value < 1:
            raise UserError(f"config key {key} must be a positive integer or null, got {value}")
    if o.lr <= 0 or o.min_lr < 0 or o.weight_decay < 0:
        raise UserError("config keys optim.lr must be > 0 and optim.min_lr, optim.weight_decay >= 0")
    if o.loss not in LOSSES:
        raise UserError(f"config key optim.loss must be one of {', '.join(LOSSES)}, got {o.loss!r}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise UserError(f"config key ema_decay must be in [0, 1), got {config.ema_decay}")
    for key in ("time_limit_min", "time_budget_min"):
        limit = getattr(config, key)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0):
            raise UserError(f"config key {key} must be a number of minutes > 0 or null, got {limit!r}")
    if config.amp not in AMP_MODES:
        raise UserError(f"config key amp must be one of {', '.join(AMP_MODES)}, got {config.amp!r}")
    if config.device not in DEVICES:
        raise UserError(f"config key device must be one of {', '.join(DEVICES)}, got {config.device!r}")
    if len(o.betas) != 2 or not all(0.0 <= b < 1.0 for b in o.betas):
        raise UserError(f"config key optim.betas must be two numbers in [0, 1), got {o.betas}")
    if o.grad_clip is not None and o.grad_clip <= 0:
        raise UserError(f"config key optim.grad_clip must be > 0 or null, got {o.grad_clip}")


def _build(cls: type, data: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        key = prefix + str(unknown[0])
        raise UserError(f"unknown config key {key!r}; known keys{' in ' + prefix[:-1] if prefix else ''}: "
                        f"{', '.join(sorted(names))}")
    kwargs = {}
    for name, value in data.items():
        key = prefix + name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise UserError(f"config key {key!r} is a section; expected a mapping, got {value!r}")
            kwargs[name] = _build(hint, value, key + ".")
        elif (cls, name) in _FREE_FORM:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise UserError(f"config key {key!r} must be a mapping of names to values, got {value!r}")
            kwargs[name] = dict(value)
        else:
            kwargs[name] = _coerce(value, hint, key)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert `value` to the field type `hint`, or raise a one-line error naming the key."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise UserError(f"config key {key!r} cannot be null")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is list and isinstance(value, (list, tuple)):
            return list(value)
    for option in options:  # second chance: strings that spell a value (YAML reads 1e-3 as a string)
        if not isinstance(value, str):
            continue
        try:
            if option is int:
                return int(value)
            if option is float:
                return float(value)
        except ValueError:
            continue
        if option is str:
            return value
    if str in options and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    wanted = " or ".join("null" if o is type(None) else getattr(o, "__name__", str(o)) for o in options)
    raise UserError(f"config key {key!r} must be {wanted}, got {value!r}")
