"""Named model configurations, in the manner of timm: create_model("serpent-b", **overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A registered configuration: how to build it and what it is."""

    name: str
    builder: Callable[..., nn.Module]
    defaults: dict = field(default_factory=dict)
    family: str = ""
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, builder: Callable[..., nn.Module], family: str, description: str, **defaults) -> None:
    """Add a named configuration: builder(**defaults, **overrides) makes the model."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = ModelSpec(name, builder, dict(defaults), family, description)


def list_models(family: str | None = None) -> list[str]:
    """Names of every registered configuration (optionally of one family), sorted."""
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def model_info(name: str) -> ModelSpec:
    """The spec behind a name, with a clear error for unknown names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; overrides replace its defaults (e.g. in_channels=1, d_state=8).

    The built module carries `arch = {"name": ..., "kwargs": ...}` so checkpoints can rebuild it.
    """
    spec = model_info(name)
    kwargs = {**spec.defaults, **overrides}
    try:
        model = spec.builder(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad option for model {name!r}: {e}") from None
    model.arch = {"name": name, "kwargs": overrides}
    return model
