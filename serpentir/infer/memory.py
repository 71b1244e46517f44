"""Will a whole-image restore fit in memory? A per-model calibration of peak memory, and what is available.

The peak of a forward pass grows linearly with the pixel count (the network is convolutions, scans
and token-wise layers), so two small calibration runs, 64x64 and 128x128, fitted as
intercept + slope * pixels, predict it for any size. Serpent has two regimes: a map larger than
serpentir.layers.pieces.piece_tokens() goes through its blocks in bands, at a fraction of the memory
per pixel. So the calibration is run twice, whole and (with the piece size lowered to a quarter
of the calibration map) in pieces, and an image is predicted by the whole-map line up to the size
where pieces start and by the larger of the two beyond it. They are measured, not derived from a formula,
so the estimate follows the network as it changes (and any memory saving made to it). On the CPU
the peak is the process's resident-set high-water mark (reset through /proc/self/clear_refs, freed
heap handed back to the system first); on a GPU it is torch's allocator peak.

Available memory is /proc/meminfo's MemAvailable, lowered to the cgroup limit's headroom when one is
set (containers), or the GPU's free memory. SERPENTIR_AVAILABLE_MEMORY (e.g. "500M", "8G") overrides
it: for tests, and for leaving room to other programs.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import re
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..layers import pieces

MEMORY_ENV = "SERPENTIR_AVAILABLE_MEMORY"
CALIBRATION_SIZES = (64, 128)
SAFETY = 1.25  # the estimate is raised by a quarter: allocator slack, and sizes far from the calibration
USABLE = 0.8  # and only this fraction of what is available is planned for

log = logging.getLogger(__name__)
_cache: "weakref.WeakKeyDictionary[nn.Module, PeakModel]" = weakref.WeakKeyDictionary()
# One calibration at a time: the CPU peak is the whole process's (two at once would measure each other),
# and a model asked for by several threads (serve's workers) is calibrated once.
_calibrating = threading.Lock()


@dataclass(frozen=True)
class PeakLine:
    """Peak memory of one forward pass, in bytes, as intercept + per_pixel * pixels (batch of one)."""

    intercept: float
    per_pixel: float

    def at(self, pixels: float) -> float:
        return max(self.intercept + self.per_pixel * pixels, self.per_pixel * pixels)


@dataclass(frozen=True)
class PeakModel:
    """The whole-map line up to `pieces_from` pixels, beyond it the larger of the two lines (with the margin)."""

    whole: PeakLine
    in_pieces: PeakLine
    pieces_from: float

    def bytes_for(self, pixels: int) -> float:
        whole = self.whole.at(min(pixels, self.pieces_from))
        return SAFETY * (whole if pixels <= self.pieces_from else max(whole, self.in_pieces.at(pixels)))


def parse_size(text: str) -> int:
    """'512M', '2G', '1.5GB', '1000000' -> bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]?)[iI]?[bB]?\s*", text)
    if not match:
        raise UserError(f"{MEMORY_ENV}={text!r}: expected a size such as 500M or 8G")
    value = float(match.group(1))
    return int(value * 1024 ** "_KMGT".index(match.group(2).upper() or "_"))


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes a restore may use now: the override, else the GPU's free memory or the host's (cgroup-aware);
    None where the system does not say."""
    override = os.environ.get(MEMORY_ENV)
    if override:
        return parse_size(override)
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    known = [v for v in (_meminfo_available(), _cgroup_headroom()) if v is not None]
    return min(known) if known else None


class Unmeasurable(Exception):
    """This system does not let a process read or reset its own peak memory."""


def peak_model(model: nn.Module, in_channels: int) -> PeakModel | None:
    """The model's forward peak as a function of pixels, calibrated once per model (kept while the model lives);
    None, with one warning, where memory cannot be measured."""
    with _calibrating:
        if model not in _cache:
            try:
                _cache[model] = _calibrate(model, in_channels)
            except Unmeasurable as e:
                log.warning("cannot measure memory here (%s): whole images are restored unchecked; --tile N bounds it",
                            e)
                _cache[model] = None
        return _cache[model]


def whole_image_fits(model: nn.Module, in_channels: int, height: int, width: int,
                     batch: int = 1) -> tuple[bool, float, int | None]:
    """(fits, estimated peak bytes, available bytes) for one whole-image forward; an unknown counts as fitting."""
    peak, have = peak_model(model, in_channels), available_memory(_device(model))
    if peak is None or have is None:
        return True, float("nan"), have
    need = peak.bytes_for(height * width) * batch
    return need <= USABLE * have, need, have


def tile_that_fits(model: nn.Module, in_channels: int, height: int, width: int, batch: int = 1,
                   minimum: int = 64) -> int | None:
    """The largest tile side (a multiple of 32, >= minimum) whose forward fits beside the full-size buffers
    of tiled inference; None when not even the smallest does."""
    peak = peak_model(model, in_channels)
    budget = USABLE * (available_memory(_device(model)) or 0) - 4 * (2 * in_channels + 2) * height * width * batch
    best = None
    side = minimum
    while side <= max(height, width) and peak.bytes_for(side * side) * batch <= budget:
        best, side = side, side + 32
    return best


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


@torch.no_grad()
def _calibrate(model: nn.Module, in_channels: int) -> PeakModel:
    device = _device(model)
    run = lambda side: model(torch.rand(1, in_channels, side, side, device=device))  # noqa: E731
    run(32)  # lazy initialisation (thread pools, kernels) is not part of the peak
    measure = _cuda_peak if device.type == "cuda" else _cpu_peak
    whole = _fit(measure(run, device), "whole")
    patch = getattr(getattr(model, "config", None), "patch_size", 1)
    with pieces.piece_budget(max(1, (CALIBRATION_SIZES[0] // patch) ** 2 // 4)):  # this thread only
        in_pieces = _fit(measure(run, device), "in pieces")
    return PeakModel(whole, in_pieces, pieces_from=pieces.piece_tokens() * patch * patch)


def _fit(peaks: list[float], regime: str) -> PeakLine:
    (s0, p0), (s1, p1) = zip(CALIBRATION_SIZES, peaks)
    slope = max((p1 - p0) / (s1 * s1 - s0 * s0), p1 / (s1 * s1) / 4)  # noise must not give a flat model
    fit = PeakLine(intercept=p1 - slope * s1 * s1, per_pixel=slope)
    log.info("memory calibration (%s): %s + %.0f B/pixel (peaks %s at %s px)", regime, format_bytes(fit.intercept),
             fit.per_pixel, ", ".join(format_bytes(p) for p in peaks), "/".join(map(str, CALIBRATION_SIZES)))
    return fit


def _cpu_peak(run, device) -> list[float]:
    """Resident-set peaks above one baseline, sizes in increasing order (freed heap is reused, never undercounted)."""
    gc.collect()
    _trim_heap()
    try:
        base = process_status_bytes("VmRSS")
    except (OSError, RuntimeError) as e:
        raise Unmeasurable(str(e)) from None
    peaks = []
    for side in CALIBRATION_SIZES:
        if not reset_peak_rss():
            raise Unmeasurable("/proc/self/clear_refs is not writable")
        run(side)
        peaks.append(max(process_status_bytes("VmHWM") - base, 0))
    return peaks


def _cuda_peak(run, device) -> list[float]:
    peaks = []
    for side in CALIBRATION_SIZES:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run(side)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
    return peaks


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the baseline is merely a little higher
        pass


def reset_peak_rss() -> bool:
    """Start a fresh VmHWM (Linux >= 4.0): the peak then covers only what follows; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def process_status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM, VmSize) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this process's cgroup (v2, else v1), when a limit is set."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit, usage = Path(limit_file).read_text().strip(), Path(usage_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and int(limit) < 2**60:
            return max(int(limit) - int(usage), 0)
    return None


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
