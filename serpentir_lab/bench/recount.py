"""Bring a finished cost report under the current counting rule, keeping everything it measured.

Counts (parameters, FLOPs, MACs) are a pure function of the architecture and the formula; memory and
latency took minutes to hours of a machine. So when the counting rule changes, the counts of a
`serpentir bench` folder are counted again and its tables patched in place: measured cells, the
run's date and machine line and its notes stay as they were, and the report says what was recounted.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from pathlib import Path

from serpentir.atomic_write import write_text_atomic
from serpentir.errors import UserError
from serpentir.ops import SCAN_FLOP_FORMULA

from .cost import Cell, CostRow, count_params_and_flops
from .report import CSV_COLUMNS, _fmt, _fmt_slope, count_footnote, loglog_slope

RECOUNT_MARK = "Counts (params, GFLOPs, GMACs and their ratios) recounted"


def _cell(text: str) -> Cell:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text  # a status: OOM, timeout, error


def read_records(folder: Path) -> list[dict[str, str]]:
    """bench.csv's rows as the text it holds, refused unless it is one."""
    path = folder / "bench.csv"
    if not path.is_file():
        raise UserError(f"{folder}: no bench.csv, not a `serpentir bench` report")
    with path.open(newline="") as f:
        records = list(csv.DictReader(f))
    if not records or set(CSV_COLUMNS) - set(records[0]):
        raise UserError(f"{path}: not a bench.csv (columns {', '.join(CSV_COLUMNS)} expected)")
    return records


def rows_of(records: list[dict[str, str]]) -> list[CostRow]:
    """bench.csv's rows as CostRows: counts as integers, measurements as numbers or status words."""
    return [CostRow(r["model"], int(r["size"]), int(r["params"]), int(r["flops"]), int(r["macs"]),
                    infer_peak_mb=_cell(r["infer_peak_mb"]), train_peak_mb=_cell(r["train_peak_mb"]),
                    latency_ms=_cell(r["latency_ms"])) for r in records]


def recount_rows(rows: list[CostRow]) -> list[CostRow]:
    """The same rows with FLOPs and MACs counted now; a model whose parameter count changed is refused
    (the report measured another architecture, and its measurements would be misattributed)."""
    out = []
    for r in rows:
        params, count = count_params_and_flops(r.model, r.size)
        if params != r.params:
            raise UserError(f"{r.model}: the report measured {r.params} parameters, the registered model has "
                            f"{params}; its counts cannot be redone")
        out.append(CostRow(r.model, r.size, params, count.flops, count.macs, count.scan_flops, count.scan_formula,
                           r.infer_peak_mb, r.train_peak_mb, r.latency_ms))
    return out


def _split(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _join(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _patch_table(lines: list[str], header: list[str], key_cells: int, values: dict[tuple, dict[int, str]]) -> int:
    """Replace cells (by column index) of the rows of every table whose header starts with `header`;
    rows are found by their first key_cells cells. Returns how many rows were patched."""
    patched, inside = 0, False
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            inside = False
            continue
        cells = _split(line)
        if cells[:len(header)] == header:
            inside = True
            continue
        key = tuple(cells[:key_cells])
        if inside and key in values:
            for col, text in values[key].items():
                cells[col] = text
            lines[i] = _join(cells)
            patched += 1
    return patched


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b > 0 else ""


def _patch_ratios(path: Path, new: list[CostRow], lines: list[str]) -> tuple[str | None, int]:
    """ratios.csv's FLOPs and MACs ratios from the new counts (its text, or None without one), and the same
    cells patched in bench.md's ratio table; returns the text and the patched rows."""
    if not path.is_file():
        return None, 0
    with path.open(newline="") as f:
        records = list(csv.DictReader(f))
    counts = {(r.model, r.size): r for r in new}
    for rec in records:
        ref, row = counts.get((rec["reference"], int(rec["size"]))), counts[(rec["model"], int(rec["size"]))]
        if ref is not None:
            rec["flops"], rec["macs"] = _ratio(ref.flops, row.flops), _ratio(ref.macs, row.macs)
    patched = _patch_table(lines, ["model", "size", "params", "FLOPs", "MACs"], 2,
                           {(r["model"], r["size"]): {3: r["flops"], 4: r["macs"]} for r in records})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue(), patched


def _patch_slopes(new: list[CostRow], lines: list[str]) -> None:
    """The FLOPs column of bench.md's log-log slope table, from the new counts."""
    values = {}
    for model in dict.fromkeys(r.model for r in new):
        pts = [(r.size * r.size, float(r.flops)) for r in sorted(new, key=lambda r: r.size) if r.model == model]
        a, b = loglog_slope(pts), loglog_slope(pts[-2:])
        if a is not None and not math.isnan(a):
            values[(model,)] = {1: f"{_fmt_slope(a)} ({_fmt_slope(b)})"}
    _patch_table(lines, ["model", "FLOPs", "inference peak"], 1, values)


def _stamp(lines: list[str], new: list[CostRow]) -> list[str]:
    """The counting footnote of the current rule, and one line under the machine line saying what was
    recounted and when (an earlier recount's line replaced)."""
    formulas = sorted({r.scan_formula for r in new if r.scan_flops}) or [SCAN_FLOP_FORMULA]
    lines = [count_footnote(formulas) if line.startswith("¹ ") else line for line in lines]
    for i in [i for i, line in enumerate(lines) if line.startswith(RECOUNT_MARK)][::-1]:
        del lines[i - 1:i + 1]  # an earlier recount's note and the blank line above it
    note = (f"{RECOUNT_MARK} on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC under the current rule "
            "(footnote 1) by `python scripts/recount_bench.py`; memory and latency are this run's measurements, "
            "unchanged.")
    machine = next((i for i, line in enumerate(lines) if line.startswith("Device ")), 0)
    lines[machine + 1:machine + 1] = ["", note]
    return lines


def recount_report(folder: str | Path) -> str:
    """Recount bench.csv's counts, patch bench.md, ratios.csv and flops.png to match; return a summary.
    Everything is computed before anything is written, so a refused report is left as it was."""
    folder = Path(folder)
    measured = read_records(folder)
    old = rows_of(measured)
    new = recount_rows(old)
    md_path = folder / "bench.md"
    if not md_path.is_file():
        raise UserError(f"{folder}: no bench.md beside bench.csv")
    lines = md_path.read_text().splitlines()

    out = io.StringIO()  # bench.csv: counts replaced, measurement cells written back as read
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r, m in zip(new, measured):
        writer.writerow([r.model, r.size, r.params, r.flops, r.macs, m["infer_peak_mb"], m["train_peak_mb"],
                         m["latency_ms"]])
    table = {(r.model, str(r.size)): {3: _fmt(r.flops, 1e9), 4: _fmt(r.macs, 1e9)} for r in new}
    n_main = _patch_table(lines, ["model", "size", "params (M)"], 2, table)
    ratios_text, n_ratio = _patch_ratios(folder / "ratios.csv", new, lines)
    _patch_slopes(new, lines)
    lines = _stamp(lines, new)

    write_text_atomic(folder / "bench.csv", out.getvalue())
    if ratios_text is not None:
        write_text_atomic(folder / "ratios.csv", ratios_text)
    write_text_atomic(md_path, "\n".join(lines) + "\n")
    if (folder / "flops.png").is_file():
        from .plots import plot_costs

        plot_costs(new, folder)
    changed = sum(1 for a, b in zip(old, new) if (a.flops, a.macs) != (b.flops, b.macs))
    return f"{folder}: {changed} of {len(new)} rows recounted; {n_main} table rows and {n_ratio} ratio rows patched"
