"""A checkpoint as an ONNX graph with dynamic batch, height and width, checked against PyTorch.

torch.onnx's dynamo exporter (torch.export, then onnxscript) traces the model once. Every 2-D scan
runs on the "export" backend (serpentir.ops.scan_2d_export): bands of lines of the map scanned as
chunks by loops that become ONNX Scan nodes, so nothing is unrolled for a particular image size. The
loops are custom ops written as Scan nodes by hand (serpentir.ops.scan_export_loops), not traced.
The graph includes the clamp to [0, 1] that `restore` applies.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..atomic_write import atomic_path
from ..errors import UserError

OPSET = 20  # the default opset of torch 2.13's exporter (run here by onnxruntime 1.32)
INPUT_NAME, OUTPUT_NAME = "image", "restored"
PARITY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ExportResult:
    """What was written and how far onnxruntime's output was from PyTorch's on a real photo."""

    path: Path
    task: str
    channels: int
    max_abs_diff: float | None  # None when onnxruntime is not installed
    check_size: tuple[int, int]


class ClampedRestorer(nn.Module):
    """The model's output clamped to [0, 1]: what `serpentir restore` writes.

    The image is reflect-padded here to the model's size multiple, as the model's own
    pad_to_multiple would, but to ceil(H / m) * m rather than by (-H) % m: every size inside the
    model is then a plain multiple of one symbol, which spares the exporter minutes of symbolic
    simplification, and the model's own padding finds nothing to do.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        m = getattr(self.model, "size_multiple", 1)
        H, W = image.shape[-2:]
        if m > 1:
            image = torch.nn.functional.pad(image, (0, (W + m - 1) // m * m - W, 0, (H + m - 1) // m * m - H),
                                            mode="reflect")
        return self.model(image)[..., :H, :W].clamp(0, 1)


def require_onnx() -> None:
    """One line naming the extra to install, instead of an ImportError deep inside torch.onnx."""
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"ONNX export needs {' and '.join(missing)}: pip install 'serpentir[onnx]'")
    if "custom_translation_table" not in inspect.signature(torch.onnx.export).parameters:
        raise UserError(f"ONNX export needs torch >= 2.6 (the scan's loops are custom ops that the exporter "
                        f"writes directly); this is torch {torch.__version__}")


@contextlib.contextmanager
def export_scan_backend(model: nn.Module) -> Iterator[None]:
    """Inside the block every module with a `scan_backend` attribute uses the exportable scan, and no
    layer goes through its map in pieces (a piece size would be traced into the graph)."""
    from ..layers import pieces

    saved = [(m, m.scan_backend) for m in model.modules() if hasattr(m, "scan_backend")]
    try:
        for m, _ in saved:
            m.scan_backend = "export"
        with pieces.piece_budget(1 << 62):  # this thread only: a concurrent restore keeps its pieces
            yield
    finally:
        for m, backend in saved:
            m.scan_backend = backend


def example_size(model: nn.Module, chunks: int) -> tuple[int, int]:
    """An odd trace size whose every scan chunk spans two or more lines of the map.

    The tracer fixes any size that is 1 in the example (inside the scan loops too): a band of lines
    per chunk (scan_2d_export) must have at least two lines at every scale, whatever its chunk count
    (at most `chunks`). Tracing never computes at this size, so a tall example costs nothing.
    """
    multiple = getattr(model, "size_multiple", 16)
    return multiple * (2 * chunks + 1) + 5, multiple * 3 + 3


def export_model(model: nn.Module, path: Path, channels: int, *, opset: int = OPSET,
                 metadata: dict[str, str] | None = None) -> None:
    """Write `model` ((N, channels, H, W) -> (N, C, H, W)) as ONNX at `path` (the caller makes it atomic)."""
    from ..ops.scan_export_chunked import MAX_CHUNKS
    from ..ops.scan_export_loops import onnx_translations

    require_onnx()
    wrapper = ClampedRestorer(model).eval()
    height, width = example_size(model, MAX_CHUNKS)
    example = torch.rand(2, channels, height, width, generator=torch.Generator().manual_seed(0))
    dynamic = torch.export.Dim.DYNAMIC
    with torch.no_grad(), export_scan_backend(model), _quiet_exporter():
        # torch.export first, then the exporter on the ExportedProgram: handing the module to
        # torch.onnx.export took 185 s for gaussian_deblur where these two steps take 75 s (one thread)
        program = torch.export.export(wrapper, (example,), dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic},),
                                      strict=False)
        program = torch.onnx.export(
            program, dynamo=True, opset_version=opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            custom_translation_table=onnx_translations(), external_data=False, verbose=False)
    for key, value in (metadata or {}).items():
        program.model.metadata_props[key] = value
    program.save(str(path), external_data=False)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter prints its steps and warns about torchvision ops; serpentir reports the result itself."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def max_onnx_difference(path: Path, model: nn.Module, image: Tensor) -> float | None:
    """max |onnxruntime - PyTorch| on one (C, H, W) image, or None without onnxruntime."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {INPUT_NAME: image[None].numpy()})
    with torch.no_grad():
        want = model(image[None]).clamp(0, 1)
    return float((torch.from_numpy(got) - want).abs().max())


def export_onnx(target: str | Path, *, task: str | None = None, weights: str | Path | None = None,
                overwrite: bool = False, opset: int = OPSET) -> ExportResult:
    """Export a bundled task's model or a checkpoint to `target`, then check it against PyTorch.

    The check runs onnxruntime (when installed) on a crop of a real photo at an odd size other
    than the traced one, before the file takes its name: above PARITY_TOLERANCE nothing is written.
    """
    from ..checkpoint.format import load_checkpoint
    from ..infer.catalogue import bundled_weights

    require_onnx()
    target = Path(target)
    if target.is_dir():
        raise UserError(f"{target}: is a folder; give the .onnx file to write")
    if target.exists() and not overwrite:
        raise UserError(f"{target}: already exists; pass --overwrite to replace it")
    if not target.parent.is_dir():
        raise UserError(f"{target.parent}: no such folder")
    weights = Path(weights) if weights else bundled_weights(task)
    model, deg, meta = load_checkpoint(weights)
    if task and task != deg.name:
        raise UserError(f"{weights} was trained for task {deg.name!r}, not {task!r}")
    channels = meta["channels"] + deg.extra_channels
    image = _check_input(deg, meta["channels"])
    with atomic_path(target) as tmp:
        export_model(model, tmp, channels, opset=opset, metadata={
            "serpentir.task": deg.name, "serpentir.weights": weights.name, "serpentir.model": meta["model"]["name"],
            "serpentir.input": f"float32 (N, {channels}, H, W) in [0, 1]; H, W >= {_min_side(model)}"})
        diff = max_onnx_difference(tmp, model, image)
        if diff is not None and not diff <= PARITY_TOLERANCE:
            raise UserError(f"{target}: the exported graph differs from PyTorch by {diff:.2e} "
                            f"(> {PARITY_TOLERANCE}); not written")
    return ExportResult(target, deg.name, channels, diff, tuple(image.shape[-2:]))


def _check_input(deg, channels: int, size: tuple[int, int] = (37, 53)) -> Tensor:
    """A crop of a real photo (skimage's astronaut) degraded by the task: what the graph will see."""
    from skimage import data as skdata

    h, w = size
    clean = torch.from_numpy(skdata.astronaut()[60:60 + h, 180:180 + w].copy()).permute(2, 0, 1).float() / 255
    if channels == 1:
        clean = clean.mean(0, keepdim=True)
    return deg(clean, seed=0).float()


def _min_side(model: nn.Module) -> int:
    """Smaller images are padded by replication in PyTorch; the graph keeps only the reflection branch."""
    return getattr(model, "size_multiple", 16) // 2 + 1
