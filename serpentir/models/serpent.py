"""Serpent: a U-shaped multi-scale network of VSS blocks (arXiv 2403.17902)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import Tensor, nn

from ..layers import DownSBlock, PatchEmbed, PixelHead, UpSBlock, pad_to_multiple, vss_stage
from ..layers.conv_mixer import MIXERS
from .image_boundary import check_image, image_residual


@dataclass
class SerpentConfig:
    """Every knob of the architecture; named configurations in the registry fill these in."""

    in_channels: int = 3
    out_channels: int = 3
    patch_size: int = 2
    embed_dim: int = 32
    depths: tuple[int, ...] = (2, 2, 2)  # VSS blocks per encoder (and mirrored decoder) level
    bottleneck_depth: int = 2
    d_state: int = 16
    expand: float = 2.0
    directions: int = 4
    order: str = "diagonal"
    scan_backend: str = "auto"
    mixer: str = "scan"  # "conv": each scan swapped for a depthwise conv of equal parameters (layers/conv_mixer.py)
    extra: dict = field(default_factory=dict)  # reserved for forward-compatible options

    def __post_init__(self):
        self.depths = tuple(int(d) for d in self.depths)
        for name in ("in_channels", "out_channels", "patch_size", "embed_dim", "d_state"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {', '.join(MIXERS)}, got {self.mixer!r}")
        if not self.depths:
            raise ValueError("depths must name at least one encoder level")


class Serpent(nn.Module):
    """Image (N, C_in, H, W) in [0, 1] -> restored image (N, C_out, H, W); any H and W.

    patchify -> down S-blocks (VSS blocks + merging) -> bottleneck -> up S-blocks (expansion +
    skip + VSS blocks) -> head; the head predicts a correction added to the input (global residual).
    """

    def __init__(self, config: SerpentConfig | None = None, **overrides):
        super().__init__()
        cfg = config or SerpentConfig(**overrides)
        self.config = cfg
        vss = dict(d_state=cfg.d_state, expand=cfg.expand, directions=cfg.directions, order=cfg.order,
                   scan_backend=cfg.scan_backend, mixer=cfg.mixer)
        dims = [cfg.embed_dim * 2 ** i for i in range(len(cfg.depths))]
        self.embed = PatchEmbed(cfg.in_channels, dims[0], cfg.patch_size)
        self.down = nn.ModuleList([DownSBlock(d, n, **vss) for d, n in zip(dims, cfg.depths)])
        self.bottleneck = vss_stage(2 * dims[-1], cfg.bottleneck_depth, **vss)
        self.up = nn.ModuleList([UpSBlock(d, n, **vss) for d, n in reversed(list(zip(dims, cfg.depths)))])
        self.head = PixelHead(dims[0], cfg.out_channels, cfg.patch_size)
        self.size_multiple = cfg.patch_size * 2 ** len(cfg.depths)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.config.in_channels)
        H, W = x.shape[-2:]
        padded = pad_to_multiple(x, self.size_multiple)
        h = self.embed(padded)
        skips = []
        for stage in self.down:
            skip, h = stage(h)
            skips.append(skip)
        h = self.bottleneck(h)
        for stage, skip in zip(self.up, reversed(skips)):
            h = stage(h, skip)
        out = image_residual(padded, self.config.out_channels) + self.head(h)
        return out[..., :H, :W]

    def arch_dict(self) -> dict:
        """The configuration as plain data, to store beside the weights."""
        d = asdict(self.config)
        d["depths"] = list(d["depths"])
        return d
