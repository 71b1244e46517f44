"""Loading serpentir weights through spandrel (the loader of ComfyUI, chaiNNer, InvokeAI, ...).

    import spandrel
    from serpentir.integrations.spandrel import install
    install()                                  # once per process; registers the "Serpent" architecture
    model = spandrel.ModelLoader().load_from_file("serpentir/weights/sr4.safetensors")
    model.purpose, model.scale                 # ("SR", 4): takes the small image, returns it 4x larger

spandrel hands an architecture only the file's tensors, never its metadata, so the network is rebuilt
from tensor shapes (serpentir.models.from_state_dict). What the network was trained for is not in any
shape: a super-resolution model maps a bicubic-upscaled image to a sharper one of the same size. That
is recovered by matching the tensors' SHA-256 (the digest serpentir records in every weights file's
metadata) against the bundled weights and any checkpoints passed to install(checkpoints=...). A file
matched so loads as what it is ("SR" x4 for sr4 and sr4_blind, with the bicubic upscale inside the
call); an unmatched one loads by its shapes alone: an extra input channel is inpainting's mask (the
only serpentir task with one), anything else a same-size "Restoration" model.

This module needs no spandrel: it describes a state dict and runs the calls a descriptor makes, so
that logic is tested where spandrel cannot be imported. The spandrel classes live in spandrel_arch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import tensors_digest
from ..models.from_state_dict import (builds_these_shapes, full_config, looks_like_serpent, named_configuration,
                                      recover_serpent)

ARCH_ID = "Serpent"
WEIGHT_PREFIXES = ("ema.", "model.", "")  # a training checkpoint holds both; its EMA weights are the ones to use
DIGEST_KEY = "tensors_sha256"
# Measured with scripts/spandrel_precision.py on the CPU (no GPU was available): bfloat16 stays within
# 0.033 of float32 (PSNR >= 48 dB against it) on every bundled model; float16 overflows in gaussian_deblur,
# whose bottleneck scan outputs reach 2.7e5 in float32, past float16's 65504, and the image turns to NaN.
# The CUDA scan was not measured in either precision.
SUPPORTS_HALF = False
SUPPORTS_BFLOAT16 = True
INSTALL_HINT = ("spandrel is not importable here; in an environment that already has torch and torchvision "
                "(ComfyUI, chaiNNer), run: pip install 'serpentir[spandrel]' (it leaves torch as it is)")


@dataclass(frozen=True)
class CheckpointInfo:
    """What a weights file's metadata says beyond its shapes: the model it was built as and its task."""

    model_name: str
    model_kwargs: dict
    task: str
    task_params: dict


@dataclass(frozen=True)
class SerpentDescription:
    """Everything a spandrel descriptor states about one Serpent state dict, in plain data."""

    name: str  # the registered size it is built as (serpent-t, ...)
    overrides: dict  # create_model(name, **overrides) builds it
    purpose: str  # "Restoration", "SR" or "Inpainting" (spandrel's Purpose)
    scale: int
    input_channels: int  # image channels the caller passes (an inpainting mask comes separately)
    output_channels: int
    size_multiple: int  # the network pads any size to this multiple itself: no size requirement for callers
    task: str | None  # the training task, when the file's metadata is known
    mask_fill: str | None = None  # inpainting: what the holes held in training ("zero" or "mean")
    tags: list[str] = field(default_factory=list)
    supports_half: bool = SUPPORTS_HALF
    supports_bfloat16: bool = SUPPORTS_BFLOAT16
    tiling: str = "DISCOURAGED"  # every output pixel sees the whole image through the scan; tiles cut that


def select_weights(state: Mapping[str, object]) -> dict[str, object]:
    """The network's own tensors: EMA weights of a training checkpoint, else the model's, else a bare dict."""
    for prefix in WEIGHT_PREFIXES:
        picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if prefix and picked:
            return picked
    return {k: v for k, v in state.items() if not k.startswith("ema.")}


def detect(state: Mapping[str, object]) -> bool:
    """spandrel's detect: Serpent's signature keys, with or without a checkpoint's prefix (names only)."""
    return looks_like_serpent(select_weights(state).keys())


def bundled_weight_files() -> list[Path]:
    """The weights shipped inside the package."""
    import serpentir

    return sorted((Path(serpentir.__file__).parent / "weights").glob("*.safetensors"))


def checkpoint_info(path: str | Path) -> tuple[str, CheckpointInfo] | None:
    """(recorded tensors digest, metadata) of a serpentir weights file; None if it records no digest or model."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    if DIGEST_KEY not in raw or "model" not in raw or "task" not in raw:
        return None
    model, task = json.loads(raw["model"]), json.loads(raw["task"])
    return raw[DIGEST_KEY], CheckpointInfo(model["name"], dict(model.get("kwargs", {})), task["name"],
                                           dict(task.get("params", {})))


def known_checkpoints(paths: Iterable[str | Path] = ()) -> dict[str, CheckpointInfo]:
    """Digest -> metadata of the bundled weights and of `paths` (read from headers only)."""
    known = {}
    for path in [*bundled_weight_files(), *paths]:
        found = checkpoint_info(path)
        if found is None:
            raise ValueError(f"{path}: records no tensor digest or no model/task in its metadata")
        known[found[0]] = found[1]
    return known


def describe(state: Mapping[str, Tensor], known: Mapping[str, CheckpointInfo] | None = None) -> SerpentDescription:
    """What this (whole-file) state dict is: architecture from its shapes, task from `known` by digest."""
    info = known.get(tensors_digest(state)) if known else None
    weights = select_weights(state)
    config = recover_serpent(weights)
    if info is not None:  # the recorded settings win (the scan order, expand as written), if they fit the tensors
        recorded = full_config(info.model_name, info.model_kwargs)
        recorded.update(in_channels=config["in_channels"], out_channels=config["out_channels"])  # not always recorded
        if not builds_these_shapes(recorded, weights):
            raise ValueError(f"the metadata's model {info.model_name} {info.model_kwargs} does not fit the tensors")
        config = recorded
    name, overrides = named_configuration(config)
    extra = config["in_channels"] - config["out_channels"]
    params = info.task_params if info else {}
    purpose, scale, fill = "Restoration", 1, None
    if extra == 1:
        purpose, fill = "Inpainting", params.get("fill", "zero")
    elif extra != 0:
        raise ValueError(f"a Serpent with {config['in_channels']} inputs and {config['out_channels']} outputs "
                         "is no task serpentir trains; it cannot be described")
    elif int(params.get("scale", 1)) > 1:
        purpose, scale = "SR", int(params["scale"])
    multiple = config["patch_size"] * 2 ** len(config["depths"])
    tags = [name, f"{config['embed_dim']}nf", "depths " + "-".join(map(str, config["depths"])),
            f"d_state {config['d_state']}", f"{config['directions']} directions",
            f"task {info.task}" if info else "task unknown (not a known file)"]
    if info is None and config["directions"] == 4:
        tags.append("scan order assumed diagonal")  # cross has the same tensors; only metadata tells them apart
    return SerpentDescription(name, overrides, purpose, scale, config["out_channels"], config["out_channels"],
                              multiple, info.task if info else None, fill, tags)


def build(description: SerpentDescription) -> nn.Module:
    """The described network, untrained and in eval mode (spandrel loads the weights into it)."""
    from serpentir import create_model

    return create_model(description.name, **description.overrides).eval()


def upscale_then_restore(model: nn.Module, image: Tensor, scale: int) -> Tensor:
    """A serpentir SR model on a small image: bicubic up by `scale` (as its training inputs were made), then the network."""
    h, w = image.shape[-2:]
    up = F.interpolate(image, size=(h * scale, w * scale), mode="bicubic", align_corners=False).clamp(0, 1)
    return model(up)


@torch.no_grad()  # not inference_mode: spandrel clamps the result in place afterwards
def restore_masked(model: nn.Module, image: Tensor, mask: Tensor, fill: str = "zero") -> Tensor:
    """An inpainting model on (image, mask): holes (mask 1) filled as in training, the mask appended as a channel.

    spandrel passes the original image; serpentir's model was trained on images whose holes hold zeros
    (or the visible mean), so the holes are filled here first.
    """
    mask = mask.to(image.dtype)
    if fill == "mean":
        visible = (1 - mask).sum(dim=(2, 3), keepdim=True).clamp_min(1)
        value = (image * (1 - mask)).sum(dim=(2, 3), keepdim=True) / visible
    else:
        value = torch.zeros((), dtype=image.dtype, device=image.device)
    return model(torch.cat([image * (1 - mask) + value * mask, mask], dim=1))
