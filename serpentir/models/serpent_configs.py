"""Serpent's named sizes. Parameters and FLOPs of each are measured and listed in the README."""

from .registry import register_model
from .serpent import Serpent

register_model(
    "serpent-t", Serpent, "serpent", "tiny: trains on a laptop CPU in minutes",
    embed_dim=16, depths=(1, 1, 1), bottleneck_depth=1, patch_size=2, d_state=8,
)
register_model(
    "serpent-b", Serpent, "serpent", "base: width 32, two VSS blocks per level",
    embed_dim=32, depths=(2, 2, 2), bottleneck_depth=2, patch_size=2, d_state=16,
)
register_model(
    "serpent-l", Serpent, "serpent", "large: width 48, under half SwinIR-B's parameters",
    embed_dim=48, depths=(2, 2, 2), bottleneck_depth=2, patch_size=2, d_state=16,
)
register_model(
    "serpent-t-conv", Serpent, "serpent",
    "serpent-t with each scan swapped for a depthwise conv of equal parameters (the control)",
    embed_dim=16, depths=(1, 1, 1), bottleneck_depth=1, patch_size=2, d_state=8, mixer="conv",
)
