"""Running a model over an image in overlapping tiles, so any image size fits in bounded memory.

Tiles overlap and are blended with a window that ramps down towards every edge a tile shares with a
neighbour (and stays flat at the image border), divided by the summed window: each pixel is a
weighted mean of the tiles that cover it, the weight small where a tile's context was cut off, so
seams do not show.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import UserError

MAX_TILES = 10_000  # more tiles than this for one image is a mistake (--tile 8), not a plan


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length `tile` covering [0, size), neighbours overlapping >= overlap."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def blend_window(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> Tensor:
    """1-D weights: 1 inside; at an edge shared with a neighbour, 0 over the outer quarter of the overlap
    (where the tile's context was cut off) then a linear ramp up to 1 across the rest of it.

    The neighbour's weight is positive wherever this one is 0, so every pixel gets weight; and a model
    that only looks `overlap // 4` pixels around gives exactly its untiled output.
    """
    w = torch.ones(length)
    margin = overlap // 4
    ramp = torch.cat([torch.zeros(margin), torch.arange(1, overlap - margin + 1, dtype=torch.float32) / (overlap - margin + 1)])
    if overlap > 0:
        if ramp_start:
            w[:overlap] *= ramp
        if ramp_end:
            w[length - overlap:] *= ramp.flip(0)
    return w


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles run_tiled cuts an image into."""
    overlap = min(overlap, (tile - 1) // 2)
    return len(tile_starts(height, min(tile, height), overlap)) * len(tile_starts(width, min(tile, width), overlap))


def check_tiling(height: int, width: int, tile: int, overlap: int) -> None:
    """A one-line error for a tile size that is too small or gives an absurd number of tiles (naming the minimum)."""
    if tile < 8:
        raise UserError(f"tile size must be at least 8 pixels, got {tile}")
    if overlap < 0:
        raise UserError(f"tile overlap must be >= 0, got {overlap}")
    count = tile_count(height, width, tile, overlap)
    if count > MAX_TILES:
        smallest = next(t for t in range(tile, max(height, width) + 1) if tile_count(height, width, t, overlap) <= MAX_TILES)
        raise UserError(f"--tile {tile} cuts this {width}x{height} image into {count} tiles (at most {MAX_TILES}); "
                        f"the smallest tile size for it is {smallest}")


@torch.no_grad()
def run_tiled(model: nn.Module, x: Tensor, tile: int, overlap: int = 32, *, progress: bool = False,
              label: str = "tiles") -> Tensor:
    """model(x) for (N, C, H, W) x, tile by tile on the model's device; result on x's device.

    The overlap is capped just below half the tile, so a tile's two ramps never meet. progress=True
    shows a bar over the tiles (on a terminal).
    """
    from tqdm import tqdm

    N, _, H, W = x.shape
    check_tiling(H, W, tile, overlap)
    overlap = min(overlap, (tile - 1) // 2)  # neighbours' ramps must not meet inside one tile
    device = _model_device(model)
    th, tw = min(tile, H), min(tile, W)
    out = weight = None
    ys, xs = tile_starts(H, th, overlap), tile_starts(W, tw, overlap)
    bar = tqdm(total=len(ys) * len(xs), desc=label, unit="tile", leave=False,
               disable=None if progress and len(ys) * len(xs) > 1 else True)
    for y0 in ys:
        wy = blend_window(th, overlap, y0 > 0, y0 + th < H)
        for x0 in xs:
            wx = blend_window(tw, overlap, x0 > 0, x0 + tw < W)
            patch = x[:, :, y0:y0 + th, x0:x0 + tw].to(device)
            result = model(patch).float().to(x.device)
            if out is None:
                out = torch.zeros(N, result.shape[1], H, W, device=x.device)
                weight = torch.zeros(1, 1, H, W, device=x.device)
            w = (wy[:, None] * wx[None, :]).to(x.device)
            out[:, :, y0:y0 + th, x0:x0 + tw] += result * w
            weight[:, :, y0:y0 + th, x0:x0 + tw] += w
            bar.update()
    bar.close()
    return out / weight


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
