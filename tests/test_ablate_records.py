"""`serpentir ablate`'s records: a study whose run folders are gone is reported again from them, untrained."""

from __future__ import annotations

import json
import shutil

import pytest
from test_ablate import SEEDED, photos, read_rows, test_photos, write_study  # noqa: F401 (the fixtures, shared)

from serpentir.errors import UserError
from serpentir_lab.ablate import load_study, run_study
from serpentir_lab.ablate.records import record_path
from serpentir_lab.ablate.report import CSV_COLUMNS

TABLES = ("ablations.csv", "ablations_arms.csv", "ablations_bands.csv")


def test_a_study_without_its_run_folders_is_reported_again_from_its_records(tmp_path, photos, test_photos):  # noqa: F811
    path = write_study(tmp_path, photos, SEEDED, test_dir=str(test_photos), test_crop=32)
    out, runs = tmp_path / "out", tmp_path / "runs"
    first = run_study(load_study(path), out, runs_dir=runs, latency_size=None, progress=False)
    tables = {name: read_rows(out / name) for name in TABLES}
    curves = [r.curves() for r in first]
    for r in first:  # each record holds the run's own per-photo scores and curves
        record = json.loads(record_path(out, r.variant).read_text())
        cache = json.loads((r.run_dir / "ablate_scores.json").read_text())
        assert record["row"]["per_photo"] == cache["row"]["per_photo"] and record["row"]["psnr"] == r.row.psnr
        assert record["curves"]["psnr"] == list(map(list, r.curves()["psnr"]))

    shutil.rmtree(runs)  # a fresh machine: the report folder (committed) is all that is left
    (out / "ablations.csv").unlink()
    again = run_study(load_study(path), out, runs_dir=runs, latency_size=None, progress=False)
    assert not runs.exists()  # nothing trained, nothing scored
    assert [r.variant for r in again] == list(SEEDED) and all(r.run_dir is None for r in again)
    assert {name: read_rows(out / name) for name in TABLES} == tables  # cost counted again, scores kept
    assert [r.curves() for r in again] == curves and curves[0]["loss"][0] == [1, 2]


def test_a_record_stands_in_only_for_the_same_training_and_scoring(tmp_path, photos, test_photos, capsys):  # noqa: F811
    path = write_study(tmp_path, photos, {"a": [], "b": ["model.kwargs.d_state=4"]}, test_dir=str(test_photos),
                       test_crop=32)
    out, runs = tmp_path / "out", tmp_path / "runs"
    run_study(load_study(path), out, runs_dir=runs, latency_size=None, progress=False)
    first = {r[0]: dict(zip(CSV_COLUMNS, r)) for r in read_rows(out / "ablations.csv")[1:]}
    assert first["a"]["latency_512_ms"] == ""
    shutil.rmtree(runs)
    capsys.readouterr()

    # scored another way (the whole test photos): neither record is used, and --no-train has nothing to report
    whole = write_study(tmp_path, photos, {"a": [], "b": ["model.kwargs.d_state=4"]}, test_dir=str(test_photos))
    with pytest.raises(UserError, match="no variant has been trained yet"):
        run_study(load_study(whole), out, runs_dir=runs, latency_size=None, progress=False, train=False)
    assert "a.json: not used, it was scored differently (test_crop)" in capsys.readouterr().err

    # b learns from something else now (a third scan state size): a's record stands, b is trained again;
    # a latency is asked for now: a's is measured afresh (a cost, from the architecture), its scores kept
    changed = write_study(tmp_path, photos, {"a": [], "b": ["model.kwargs.d_state=2"]}, test_dir=str(test_photos),
                          test_crop=32)
    results = run_study(load_study(changed), out, runs_dir=runs, latency_size=32, progress=False)
    assert "b.json: not used, the variant's training settings have changed since it was recorded" in capsys.readouterr().err
    assert [r.run_dir is None for r in results] == [True, False]
    assert json.loads(record_path(out, "b").read_text())["knobs"]["d_state"] == 2  # rewritten for the new b
    rows = {r[0]: dict(zip(CSV_COLUMNS, r)) for r in read_rows(out / "ablations.csv")[1:]}
    assert rows["b"]["d_state"] == "2" and rows["a"]["psnr"] == first["a"]["psnr"]
    assert float(rows["a"]["latency_512_ms"]) > 0 and float(rows["b"]["latency_512_ms"]) > 0
