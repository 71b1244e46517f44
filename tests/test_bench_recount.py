"""Recounting a finished cost report: new counts in every table, measurements and the run's own lines kept."""

import argparse
import csv
import shutil

import pytest

from serpentir.cli.workshop import add_bench_parser
from serpentir.errors import UserError
from serpentir_lab.bench.cost import count_params_and_flops
from serpentir_lab.bench.recount import RECOUNT_MARK, recount_report


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def old_report(tmp_path, monkeypatch):
    """A counts-only report, then made to look like one counted under another rule, with a measured latency."""
    monkeypatch.setenv("SERPENTIR_SCAN_BACKEND", "chunked")
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "bench"
    args = parser.parse_args(["bench", "--models", "serpent-t,unet", "--sizes", "32,64", "--reference", "unet",
                              "--skip-latency", "--skip-memory", "--out", str(out), "--no-plots"])
    args.func(args)
    rows = read_csv(out / "bench.csv")
    md = (out / "bench.md").read_text()
    for r in rows:
        if r["model"] == "serpent-t":  # as the old rule had it: FLOPs not 2 x MACs, MACs a little off
            old_flops, old_macs = int(r["macs"]) * 3, int(r["macs"]) - 1000
            md = md.replace(f"| serpent-t | {r['size']} |", f"| serpent-t | {r['size']} |X", 1)
            r["flops"], r["macs"] = str(old_flops), str(old_macs)
        r["latency_ms"] = "12.5" if r["size"] == "32" else "OOM"
    write_csv(out / "bench.csv", rows)
    lines = []
    for line in md.splitlines():  # the marked table rows get old count cells and a measured latency
        if "|X" in line:
            cells = line.replace("|X", "|").strip("|").split("|")
            cells[3], cells[4], cells[7] = " 9.99 ", " 8.88 ", " 12.5 (n=3) "
            line = "|" + "|".join(cells) + "|"
        lines.append(line)
    (out / "bench.md").write_text("\n".join(lines) + "\n")
    return out


def test_recount_rewrites_counts_everywhere_and_keeps_measurements(old_report):
    summary = recount_report(old_report)
    assert "2 of 4 rows recounted" in summary
    rows = {(r["model"], r["size"]): r for r in read_csv(old_report / "bench.csv")}
    for (model, size), r in rows.items():
        params, count = count_params_and_flops(model, int(size))
        assert (int(r["params"]), int(r["flops"]), int(r["macs"])) == (params, count.flops, count.macs)
        assert int(r["flops"]) == 2 * int(r["macs"])
        assert r["latency_ms"] == ("12.5" if size == "32" else "OOM")  # measurements as they were
    md = (old_report / "bench.md").read_text()
    assert "9.99" not in md and "8.88" not in md and "12.5 (n=3)" in md
    assert md.count(RECOUNT_MARK) == 1 and "FLOPs = 2 x MACs" in md and "9*b*d*L*N" not in md
    ratios = {(r["model"], r["size"]): r for r in read_csv(old_report / "ratios.csv")}
    for key, r in ratios.items():
        ref = rows[("unet", key[1])]
        assert float(r["macs"]) == pytest.approx(int(ref["macs"]) / int(rows[key]["macs"]), abs=0.006)
        assert r["flops"] == r["macs"]  # one rule: the two ratios are the same number

    before = {p.name: p.read_text() for p in old_report.iterdir()}
    assert "0 of 4 rows recounted" in recount_report(old_report)
    after = {p.name: p.read_text() for p in old_report.iterdir()}
    strip = lambda t: "\n".join(line for line in t.splitlines() if not line.startswith(RECOUNT_MARK))  # noqa: E731
    assert {k: strip(v) for k, v in after.items()} == {k: strip(v) for k, v in before.items()}


def test_a_report_of_another_architecture_is_refused(old_report, tmp_path):
    rows = read_csv(old_report / "bench.csv")
    rows[0]["params"] = "123"
    write_csv(old_report / "bench.csv", rows)
    kept = (old_report / "bench.md").read_text()
    with pytest.raises(UserError, match="123 parameters"):
        recount_report(old_report)
    assert (old_report / "bench.md").read_text() == kept  # nothing half-written
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no bench.csv"):
        recount_report(empty)
    shutil.rmtree(empty)
