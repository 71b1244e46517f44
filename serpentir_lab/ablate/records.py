"""A study's durable record of each scored variant, kept beside its report in `<out>/records/`.

Run folders (checkpoints, logs, score caches) stay on the machine that trained them, and a later
session may start on a fresh one. A record holds what the report needs of a finished variant: its
per-photo scores, the model it describes (so the cost is counted again), its saved training config
and its learning curves. Committed with the report, it lets a later session add variants to a study
and rewrite the whole report without training the recorded variants again.

A record stands in only for a variant that has no run folder here (a run folder, finished or not, is
this machine's own and wins), and only while both still hold: the variant learns from exactly what it
learnt from (the run folder's digest), and the study scores on the same photos the same way.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from serpentir.atomic_write import write_text_atomic

from ..compare import CompareRow, architecture_cost, measure_latency
from .result import VariantResult
from .study import Variant

RECORDS_DIR = "records"
RECORD_VERSION = 1


@dataclass
class Recorded:
    """A variant read back from its record: the scored result and the training config it was run with."""

    result: VariantResult
    config: dict


def record_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / RECORDS_DIR / f"{name}.json"


def write_record(out_dir: str | Path, variant: Variant, result: VariantResult, *, scoring: dict, timing: dict,
                 arch: dict, config: dict) -> Path:
    """Write (atomically) the record of a variant scored from its run folder; timing: the latency's size and
    threads (a cost, measured again when a report asks for it otherwise)."""
    curves = result.curves()
    record = {"version": RECORD_VERSION, "variant": variant.name, "digest": variant.digest, "scoring": scoring,
              "timing": timing,
              "model": result.model, "knobs": result.knobs, "arch": arch, "config": config,
              "row": {**asdict(result.row), "params": None, "flops": {}, "macs": {}},  # cost is counted on reading
              "notes": result.notes,
              "curves": {k: [list(steps), list(values)] for k, (steps, values) in curves.items()}}
    path = record_path(out_dir, variant.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(record, indent=1, default=str) + "\n")
    return path


def read_record(out_dir: str | Path, variant: Variant, scoring: dict, timing: dict) -> Recorded | None:
    """The variant's record, or None when there is none or it no longer stands for the variant (said on stderr).

    Costs are counted again: MACs always, the latency (and inference peak memory) when the record's were
    measured at another size or thread count than `timing` asks for.
    """
    path = record_path(out_dir, variant.name)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("version") != RECORD_VERSION:
            why = f"record version {record.get('version')}, this serpentir reads {RECORD_VERSION}"
        elif record["digest"] != variant.digest:
            why = "the variant's training settings have changed since it was recorded"
        elif record["scoring"] != scoring:
            changed = sorted(k for k in scoring.keys() | record["scoring"].keys()
                             if scoring.get(k) != record["scoring"].get(k))
            why = f"it was scored differently ({', '.join(changed)})"
        else:
            params, flops, macs = architecture_cost(record["arch"], (512,))
            row = CompareRow(**{**record["row"], "params": params, "flops": flops, "macs": macs})
            if record["timing"] != timing:
                row.latency_ms, row.infer_peak_mb = measure_latency(record["arch"], timing["latency_size"],
                                                                    threads=timing["threads"], memory=True)
            curves = {k: (list(steps), list(values)) for k, (steps, values) in record["curves"].items()}
            result = VariantResult(variant.name, record["model"], record["knobs"], row, None, record["notes"], curves)
            return Recorded(result, record["config"])
    except (ValueError, KeyError, TypeError) as e:
        why = f"unreadable ({type(e).__name__}: {e})"
    print(f"{path}: not used, {why}", file=sys.stderr)
    return None
