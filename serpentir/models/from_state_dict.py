"""Serpent's settings read back from the tensor shapes of a bare state dict (keys and shapes, no metadata).

Loaders such as spandrel see only a file's tensors, so the architecture has to be recoverable from
them. Every setting that changes a parameter's shape is read from that shape:

- ``embed.proj.weight`` (embed_dim, in_channels, patch, patch): width, input channels, patch size;
- ``head.proj.weight`` (patch * patch * out_channels, embed_dim): output channels;
- ``down.{i}.merge`` per encoder level and ``down.{i}.blocks.{j}`` per block: depths (the decoder
  ``up.{L-1-i}`` must mirror them); ``bottleneck.{j}``: bottleneck depth;
- ``*.ssm.x_proj_weight`` (directions, dt_rank + 2 * d_state, d_inner) and ``*.ssm.A_log``
  (directions * d_inner, d_state): directions and d_state;
- ``*.in_proj.weight`` (2 * d_inner, dim) at every width: expand (d_inner = int(expand * dim)).

Not in any shape: the scan order ("diagonal" or "cross" walk the map differently with the same
parameters; with 1 or 2 directions both orders are the same walks, with 4 they are not), the scan
backend (a runtime choice) and what the network was trained for (a super-resolution model maps a
bicubic-upscaled image to one of the same size, so its scale is only in the checkpoint's metadata).
recover_serpent takes the order from the caller (metadata when there is some, else "diagonal").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import torch

from .registry import create_model, list_models, model_info

Shapes = Mapping[str, Sequence[int]]

# What distinguishes a Serpent state dict from any other network's (checked before reading shapes).
SIGNATURE_KEYS = ("embed.proj.weight", "embed.norm.weight", "head.proj.weight", "head.norm.weight",
                  "down.0.merge.reduction.weight", "up.0.expand.expand.weight", "up.0.fuse.weight")
D_CONV = 3  # VSSBlock's depthwise kernel: Serpent always builds 3 x 3
CONFIG_KEYS = ("in_channels", "out_channels", "patch_size", "embed_dim", "depths", "bottleneck_depth", "d_state",
               "expand", "directions", "order")


class NotSerpentError(ValueError):
    """The state dict is not one Serpent can be built for (missing keys, or shapes no configuration makes)."""


def shapes_of(state: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """Key -> shape, from tensors or from shapes already given as sequences of ints."""
    return {k: tuple(int(n) for n in (v.shape if hasattr(v, "shape") else v)) for k, v in state.items()}


def looks_like_serpent(keys: object) -> bool:
    """Whether a state dict's keys carry Serpent's signature (cheap: names only)."""
    return all(k in keys for k in SIGNATURE_KEYS)


def recover_serpent(state: Mapping[str, object], order: str = "diagonal") -> dict:
    """Every Serpent setting (CONFIG_KEYS) that reproduces this state dict's keys and shapes exactly.

    Raises NotSerpentError when the keys are not Serpent's or no configuration gives these shapes.
    """
    shapes = shapes_of(state)
    if not looks_like_serpent(shapes):
        missing = [k for k in SIGNATURE_KEYS if k not in shapes]
        raise NotSerpentError(f"not a Serpent state dict: no {', '.join(missing)}")
    width, in_channels, patch, patch_w = _shape(shapes, "embed.proj.weight", 4)
    head_rows, head_width = _shape(shapes, "head.proj.weight", 2)
    if patch != patch_w or head_width != width or head_rows % (patch * patch):
        raise NotSerpentError(f"embed {shapes['embed.proj.weight']} and head {shapes['head.proj.weight']} do not fit")
    levels = _count(shapes, r"down\.(\d+)\.merge\.reduction\.weight")
    depths = tuple(_count(shapes, rf"down\.{i}\.blocks\.(\d+)\.in_proj\.weight") for i in range(levels))
    mirrored = tuple(_count(shapes, rf"up\.{levels - 1 - i}\.blocks\.(\d+)\.in_proj\.weight") for i in range(levels))
    if mirrored != depths:
        raise NotSerpentError(f"decoder depths {mirrored} do not mirror encoder depths {depths}")
    config = dict(in_channels=in_channels, out_channels=head_rows // (patch * patch), patch_size=patch,
                  embed_dim=width, depths=depths,
                  bottleneck_depth=_count(shapes, r"bottleneck\.(\d+)\.in_proj\.weight"), order=order)
    config.update(_scan_settings(shapes))
    _check_builds_the_same(config, shapes)
    return config


def builds_these_shapes(config: Mapping, state: Mapping[str, object]) -> bool:
    """Whether create_model(**config) has exactly this state dict's keys and shapes (e.g. a config from metadata)."""
    try:
        _check_builds_the_same(dict(config), shapes_of(state))
    except NotSerpentError:
        return False
    return True


def named_configuration(config: Mapping) -> tuple[str, dict]:
    """(registered serpent-* name, overrides): the named size needing the fewest overrides to give `config`."""
    best = None
    for name in list_models("serpent"):
        full = full_config(name, {})
        overrides = {k: config[k] for k in CONFIG_KEYS if k in config and full.get(k) != config[k]}
        if best is None or len(overrides) < len(best[1]):
            best = (name, overrides)
    return best


def full_config(name: str, kwargs: Mapping) -> dict:
    """A named configuration's every CONFIG_KEYS setting, kwargs over its defaults over SerpentConfig's."""
    from .serpent import SerpentConfig

    defaults = {k: getattr(SerpentConfig(), k) for k in CONFIG_KEYS}
    full = {**defaults, **model_info(name).defaults, **kwargs}
    full["depths"] = tuple(int(d) for d in full["depths"])
    full["expand"] = float(full["expand"])
    return {k: full[k] for k in CONFIG_KEYS}


def _scan_settings(shapes: dict[str, tuple[int, ...]]) -> dict:
    """directions, d_state and expand, the same in every VSS block (a network without blocks gets defaults)."""
    blocks = sorted(k[: -len(".in_proj.weight")] for k in shapes if k.endswith(".in_proj.weight"))
    if not blocks:
        return {}  # no state-space parameters at all: these settings change nothing
    found, pairs, lo, hi = set(), [], 0.0, math.inf
    for b in blocks:
        two_inner, dim = _shape(shapes, f"{b}.in_proj.weight", 2)
        K, rows, d_inner = _shape(shapes, f"{b}.ssm.x_proj_weight", 3)
        N = _shape(shapes, f"{b}.ssm.A_log", 2)[1]
        rank = _shape(shapes, f"{b}.ssm.dt_proj_weight", 3)[2]
        kernel = _shape(shapes, f"{b}.dwconv.weight", 4)[-1]
        if two_inner != 2 * d_inner or rows != rank + 2 * N or rank != math.ceil(d_inner / 32) or kernel != D_CONV:
            raise NotSerpentError(f"block {b}: its projections are not a Serpent VSS block's")
        found.add((K, N))
        pairs.append((dim, d_inner))
        lo, hi = max(lo, d_inner / dim), min(hi, (d_inner + 1) / dim)  # int(expand * dim) == d_inner
    if len(found) != 1:
        raise NotSerpentError(f"blocks disagree on (directions, d_state): {sorted(found)}")
    (K, N), = found
    for expand in (lo, (lo + hi) / 2):  # the lower bound is the plain ratio; the midpoint survives rounding
        if lo < hi and all(int(expand * dim) == d for dim, d in pairs):
            return dict(directions=K, d_state=N, expand=expand)
    raise NotSerpentError(f"no single expand ratio gives every block's inner width {sorted(set(pairs))}")


def _check_builds_the_same(config: dict, shapes: dict[str, tuple[int, ...]]) -> None:
    """Build the recovered configuration without memory (meta tensors) and compare every key and shape."""
    try:
        with torch.device("meta"):
            built = {k: tuple(v.shape) for k, v in create_model("serpent-b", **config).state_dict().items()}
    except (ValueError, TypeError) as e:
        raise NotSerpentError(f"recovered settings {config} do not build: {e}") from None
    if built != shapes:
        extra, missing = sorted(set(shapes) - set(built)), sorted(set(built) - set(shapes))
        wrong = sorted(k for k in set(built) & set(shapes) if built[k] != shapes[k])
        raise NotSerpentError(f"no Serpent configuration gives these tensors (unexpected {extra[:2]}, "
                              f"missing {missing[:2]}, other shapes {wrong[:2]})")


def _shape(shapes: dict[str, tuple[int, ...]], key: str, ndim: int) -> tuple[int, ...]:
    if key not in shapes or len(shapes[key]) != ndim:
        raise NotSerpentError(f"{key}: expected a {ndim}-d tensor, got {shapes.get(key, 'nothing')}")
    return shapes[key]


def _count(shapes: dict[str, tuple[int, ...]], pattern: str) -> int:
    """How many consecutive indices 0, 1, ... the pattern's group takes among the keys."""
    found = {int(m.group(1)) for k in shapes if (m := re.fullmatch(pattern, k))}
    n = 0
    while n in found:
        n += 1
    if len(found) != n:
        raise NotSerpentError(f"indices of {pattern!r} are not 0..{n - 1}: {sorted(found)}")
    return n
