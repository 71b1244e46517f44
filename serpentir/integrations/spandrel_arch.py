"""The Serpent architecture as spandrel sees it: detect by key names, load by shapes (imports spandrel).

Kept apart from serpent_description so that everything but these few lines of glue is
importable and tested without spandrel; install() imports this module only when asked.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from spandrel import (Architecture, ImageModelDescriptor, MaskedImageModelDescriptor, ModelTiling,
                      SizeRequirements, StateDict)
from torch import nn

from .serpent_description import ARCH_ID, CheckpointInfo, build, describe, detect, restore_masked, select_weights, upscale_then_restore


class SerpentArch(Architecture[nn.Module]):
    """Serpent for spandrel; `known` maps tensor digests to metadata (the task, e.g. an SR scale)."""

    def __init__(self, known: Mapping[str, CheckpointInfo] | None = None) -> None:
        super().__init__(id=ARCH_ID, name="Serpent (serpentir)", detect=detect)
        self._known = dict(known or {})

    def load(self, state_dict: StateDict) -> ImageModelDescriptor[nn.Module] | MaskedImageModelDescriptor[nn.Module]:
        d = describe(state_dict, self._known)
        common = dict(model=build(d), state_dict=select_weights(state_dict), architecture=self, tags=d.tags,
                      supports_half=d.supports_half, supports_bfloat16=d.supports_bfloat16,
                      input_channels=d.input_channels, output_channels=d.output_channels,
                      size_requirements=SizeRequirements(), tiling=ModelTiling[d.tiling])
        if d.purpose == "Inpainting":
            return MaskedImageModelDescriptor(**common, purpose="Inpainting",
                                              call_fn=functools.partial(restore_masked, fill=d.mask_fill))
        call = functools.partial(upscale_then_restore, scale=d.scale) if d.scale > 1 else None
        return ImageModelDescriptor(**common, purpose=d.purpose, scale=d.scale, call_fn=call)

