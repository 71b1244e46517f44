"""benchmarks/gpu/gpu_bench.py on the CPU: the smoke plan end to end, and failures recorded as rows."""

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import loaded_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "gpu_bench.py"


@pytest.fixture(scope="module")
def bench():
    with loaded_script(SCRIPT) as module:
        yield module


def test_smoke_run_writes_a_number_or_an_error_for_every_case(bench, tmp_path):
    assert bench.main(["--device", "cpu", "--smoke", "--out", str(tmp_path)]) == 0
    with (tmp_path / "gpu_bench.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == bench.COLUMNS
        rows = list(reader)
    expected = {(c.kind, c.model, str(c.size)) for c in bench.SMOKE.cases()}
    assert {(r["kind"], r["model"], r["size"]) for r in rows} == expected and len(rows) == len(expected)
    for r in rows:
        assert r["error"] or (r["value"] and float(r["value"]) > 0), r
    units = {r["kind"]: r["unit"] for r in rows if not r["error"]}
    assert units == {"memory": "MiB", "latency": "ms", "throughput": "crop px/s"}
    backends = {r["model"]: r["scan_backend"] for r in rows}
    assert backends["serpent-t"] in ("chunked", "cpu", "ref") and backends["nafnet-t"] == "-"
    md = (tmp_path / "gpu_bench.md").read_text()
    assert "SMOKE RUN" in md and "scan backends here" in md and md.count("| serpent-t |") == 3


def test_a_failing_case_is_a_row_not_the_end(bench, monkeypatch):
    import serpentir

    class OutOfMemory(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    real = serpentir.create_model
    monkeypatch.setattr(serpentir, "create_model",
                        lambda name, **kw: OutOfMemory() if name == "serpent-t" else real(name, **kw))
    plan = bench.Plan(memory_models=("nafnet-t", "serpent-t"), memory_sizes=(16,), speed_models=("no-such-model",),
                      latency_size=16, crop=16, train_batch=1, warmup=0, repeats=1)
    rows = bench.run(plan, torch.device("cpu"), budget_s=60, log=lambda line: None)
    by = {(r.kind, r.model): r for r in rows}
    assert by[("memory", "serpent-t")].error.startswith("OOM")
    assert math.isnan(by[("memory", "serpent-t")].value)
    assert not by[("memory", "nafnet-t")].error and by[("memory", "nafnet-t")].value > 0
    assert "unknown model" in by[("latency", "no-such-model")].error


def test_spent_budget_skips_the_rest_and_still_reports(bench, tmp_path):
    rows = bench.run(bench.SMOKE, torch.device("cpu"), budget_s=0, log=lambda line: None)
    assert len(rows) == len(bench.SMOKE.cases()) and all(r.error.startswith("skipped") for r in rows)
    _, md_path = bench.write_report(rows, {"device": "cpu"}, tmp_path, bench.SMOKE, smoke=True)
    assert "not measured" in md_path.read_text()


def test_memory_ratio_is_the_larger_over_the_smaller(bench):
    Row = bench.Row
    rows = [Row("memory", "swinir-b", 256, 1, peak_mib=5000.0), Row("memory", "serpent-l", 256, 1, peak_mib=1000.0),
            Row("memory", "swinir-b", 512, 1, error="OOM: ..."), Row("memory", "serpent-l", 512, 1, peak_mib=3000.0)]
    assert bench.memory_ratios(rows, "swinir-b", "serpent-l") == {256: 5.0}
