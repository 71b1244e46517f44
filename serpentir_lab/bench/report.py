"""The cost benchmark's outputs: bench.csv, ratios.csv and bench.md (tables, ratios, log-log slopes).

Kept apart from the measuring so a table can be rebuilt, or a format changed, without measuring again.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from serpentir.atomic_write import write_text_atomic
from serpentir.ops import SCAN_FLOP_FORMULA, available_backends

from .cost import FAILURES, BenchSettings, Cell, CostRow

CSV_COLUMNS = ("model", "size", "params", "flops", "macs", "infer_peak_mb", "train_peak_mb", "latency_ms")
RATIO_COLUMNS = ("params", "flops", "macs", "infer_peak_mb", "train_peak_mb", "latency_ms")
SLOPE_COLUMNS = ("flops", "infer_peak_mb", "train_peak_mb", "latency_ms")


def _is_number(v: Cell) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _csv_cell(v: Cell, digits: int = 1) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return str(v) if isinstance(v, int) else f"{v:.{digits}f}"


def csv_text(rows: list[CostRow]) -> str:
    """bench.csv: one row per model and size; empty, OOM, timeout or error where not measured."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([_csv_cell(getattr(r, c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _ratio(ref: CostRow, row: CostRow, column: str) -> str:
    """reference / model, or a bound ('>12.0') when one side failed against a known limit."""
    a, b = getattr(ref, column), getattr(row, column)
    if _is_number(a) and _is_number(b):
        return f"{a / b:.2f}" if b > 0 else ""
    if a in FAILURES and column in ref.lower_bounds and _is_number(b) and b > 0:
        return f">{ref.lower_bounds[column] / b:.2f}"
    if b in FAILURES and column in row.lower_bounds and _is_number(a):
        return f"<{a / row.lower_bounds[column]:.2f}"
    return ""


def ratio_rows(rows: list[CostRow], reference: str) -> list[dict[str, str]]:
    """For every model and size the reference was counted at: how many times the reference's cost it is."""
    refs = {r.size: r for r in rows if r.model == reference}
    table = []
    for r in rows:
        if r.size in refs:
            table.append({"model": r.model, "size": str(r.size), "reference": reference,
                          **{c: _ratio(refs[r.size], r, c) for c in RATIO_COLUMNS}})
    return table


def ratios_csv_text(table: list[dict[str, str]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=["model", "size", "reference", *RATIO_COLUMNS], lineterminator="\n")
    w.writeheader()
    w.writerows(table)
    return out.getvalue()


def loglog_slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(value) against log(pixels) for (size, value) points: 1.0 = linear in pixels."""
    pts = [(math.log(s * s), math.log(v)) for s, v in points if _is_number(v) and v > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def slopes(rows: list[CostRow]) -> dict[str, dict[str, tuple[float | None, float | None]]]:
    """model -> column -> (slope over every measured size, slope between the two largest measured sizes)."""
    out: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for model in dict.fromkeys(r.model for r in rows):
        mine = sorted((r for r in rows if r.model == model), key=lambda r: r.size)
        out[model] = {}
        for c in SLOPE_COLUMNS:
            pts = [(r.size, getattr(r, c)) for r in mine if _is_number(getattr(r, c))]
            out[model][c] = (loglog_slope(pts), loglog_slope(pts[-2:]))
    return out


def _fmt(v: Cell, unit_scale: float = 1.0) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return f"**{v}**"
    x = v / unit_scale
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) >= 0.01 else f"{x:.2g}"


def _fmt_slope(s: float | None) -> str:
    return "" if s is None else f"{s:.3f}"


def _scan_backend(device: str) -> str:
    """What Serpent's 'auto' scan ran on, so a table says whether it timed the compiled kernel or not."""
    chosen = os.environ.get("SERPENTIR_SCAN_BACKEND") or "auto"
    if chosen != "auto":
        return f"{chosen} (SERPENTIR_SCAN_BACKEND)"
    try:
        return f"auto = {available_backends(device)[0]}"
    except Exception:  # noqa: BLE001 - a label, never a reason to lose the report
        return "auto"


def count_footnote(scan_formulas: list[str]) -> str:
    """Footnote 1 of bench.md: the one counting rule, and the scan formulas the counts used."""
    return ("¹ Forward pass, one rule for every model: MACs (multiply-accumulates) are counted and FLOPs = 2 x MACs. "
            "Matmul, convolution and attention MACs are torch's FlopCounterMode count / 2 on the meta device; "
            "selective-scan MACs, which FlopCounterMode cannot see, are added by formula: "
            + "; ".join(f"`{f}`" for f in scan_formulas) + ". "
            "Element-wise work outside the scan (norms, activations, softmax) is not counted, for any model.")


def markdown_text(rows: list[CostRow], settings: BenchSettings, reference: str) -> str:
    """bench.md: the table, what each number means, ratios against the reference, slopes, failures."""
    scan_formulas = sorted({r.scan_formula for r in rows if r.scan_flops}) or [SCAN_FLOP_FORMULA]
    threads = settings.threads or torch.get_num_threads()
    device = settings.device if settings.device == "cpu" else f"cuda ({torch.cuda.get_device_name()})"
    lines = [
        "# Cost benchmark",
        "",
        f"Device {device}, {threads} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}; "
        f"selective-scan backend {_scan_backend(settings.device)}; "
        f"batch 1, {settings.in_channels}-channel square inputs; timeout {settings.timeout:g} s per measurement; "
        f"memory limit {f'{settings.memory_limit_gb:g} GB per step' if settings.memory_limit_gb else 'none'}; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "| model | size | params (M) | GFLOPs¹ | GMACs¹ | inference peak (MB)² | training-step peak (MB)² | latency (ms)³ |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lat = _fmt(r.latency_ms) + (f" (n={r.latency_runs})" if r.latency_runs else "")
        lines.append(f"| {r.model} | {r.size} | {r.params / 1e6:.2f} | {_fmt(r.flops, 1e9)} | {_fmt(r.macs, 1e9)} | "
                     f"{_fmt(r.infer_peak_mb)} | {_fmt(r.train_peak_mb)} | {lat} |")
    lines += [
        "",
        count_footnote(scan_formulas),
        "",
        "² Peak memory growth of one step above the idle process (model and input already loaded), each step "
        "in its own process: " + ("VmHWM minus VmRSS before the step (peak resident set)" if settings.device == "cpu"
                                  else "torch.cuda.max_memory_allocated minus memory allocated before the step")
        + ". Inference runs under torch.inference_mode; the training step is forward, L1 loss, backward and an "
        "AdamW step (its gradients and optimizer state count).",
        "",
        f"³ Median of up to {settings.repeats} timed inference runs after a warm-up run (n = runs that fit in "
        f"the timeout). Wall-clock on a machine that may be shared: compare orders of magnitude.",
        "",
        "**OOM**: the step ran out of memory (allocation failed"
        + (f" once the step asked for more than {settings.memory_limit_gb:g} GB of address space, the limit "
           "given; a '>' ratio takes that limit as the step's peak, a bound that assumes the memory asked for "
           "would have been used" if settings.memory_limit_gb else "")
        + ", or the process was killed by the out-of-memory killer); **timeout**: killed after "
        f"{settings.timeout:g} s; **error**: another failure (see notes). A model that failed at one size is not "
        "run at larger sizes (its cost only grows) and shows the same status. An empty cell was not measured"
        + (f" (memory and latency measured up to {settings.measure_up_to}x{settings.measure_up_to})"
           if settings.measure_up_to else "") + ".",
    ]
    table = ratio_rows(rows, reference)
    if table:
        lines += ["", f"## Ratios: {reference} / model", "",
                  f"How many times the cost of {reference} each model's cost is, at the same size "
                  "(>x: at least x, where the reference failed against a known limit; <x: at most x).", "",
                  "| model | size | params | FLOPs | MACs | inference peak | training-step peak | latency |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for t in table:
            lines.append("| " + " | ".join([t["model"], t["size"]] + [t[c] for c in RATIO_COLUMNS]) + " |")
    else:
        lines += ["", f"(No ratios: the reference model {reference} was not measured.)"]
    lines += ["", "## Log-log slope against pixel count", "",
              "Least-squares slope of log(cost) against log(H*W) over every measured size, and between the two "
              "largest measured sizes (in brackets); 1.0 = linear in pixels. Memory and latency at small sizes "
              "carry fixed overheads, which flatten the all-sizes slope.", "",
              "| model | FLOPs | inference peak | training-step peak | latency |", "|---|---:|---:|---:|---:|"]
    for model, per in slopes(rows).items():
        cells = [f"{_fmt_slope(a)} ({_fmt_slope(b)})" if a is not None else "" for a, b in (per[c] for c in SLOPE_COLUMNS)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    notes = [f"- {r.model} {r.size}x{r.size}: {n}" for r in rows for n in r.notes]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def write_report(rows: list[CostRow], out_dir: str | Path, settings: BenchSettings, reference: str) -> str:
    """Write bench.csv, ratios.csv and bench.md into out_dir (each atomically); return the markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "bench.csv", csv_text(rows))
    write_text_atomic(out / "ratios.csv", ratios_csv_text(ratio_rows(rows, reference)))
    text = markdown_text(rows, settings, reference)
    write_text_atomic(out / "bench.md", text)
    return text
