"""Loading serpentir weights through spandrel (the loader of ComfyUI, chaiNNer, InvokeAI, ...).

    import spandrel
    from serpentir.integrations.spandrel import install
    install()                                  # once per process; registers the "Serpent" architecture
    model = spandrel.ModelLoader().load_from_file("serpentir/weights/sr4.safetensors")
    model.purpose, model.scale                 # ("SR", 4): takes the small image, returns it 4x larger

What a state dict is (architecture from its shapes, task from its digest) is decided in
serpent_description, which needs no spandrel; spandrel_arch is the glue that imports spandrel.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .serpent_description import (ARCH_ID, INSTALL_HINT, SUPPORTS_BFLOAT16, SUPPORTS_HALF, CheckpointInfo,
                                  SerpentDescription, build, bundled_weight_files, checkpoint_info, describe, detect,
                                  known_checkpoints, restore_masked, select_weights, upscale_then_restore)

if TYPE_CHECKING:
    from spandrel import ArchRegistry, ArchSupport

__all__ = ["ARCH_ID", "SUPPORTS_BFLOAT16", "SUPPORTS_HALF", "CheckpointInfo", "SerpentDescription", "build",
           "bundled_weight_files", "checkpoint_info", "describe", "detect", "install", "known_checkpoints",
           "restore_masked", "select_weights", "upscale_then_restore"]


def install(*, checkpoints: Iterable[str | Path] = (), ignore_duplicates: bool = False,
            registry: ArchRegistry | None = None) -> list[ArchSupport]:
    """Register Serpent with spandrel's MAIN_REGISTRY (or `registry`); returns the ArchSupport entries added.

    checkpoints: your own serpentir weights files whose task (e.g. an SR scale) spandrel should know;
    the bundled weights are always known. Like spandrel_extra_arches.install(), a second call raises
    DuplicateArchitectureError unless ignore_duplicates.
    """
    try:
        import spandrel
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    from .spandrel_arch import SerpentArch

    arch = SerpentArch(known_checkpoints(checkpoints))
    target = spandrel.MAIN_REGISTRY if registry is None else registry
    return target.add(spandrel.ArchSupport.from_architecture(arch), ignore_duplicates=ignore_duplicates)
