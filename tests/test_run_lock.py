"""One training per run folder: a second one stops with a one-line error and writes nothing there."""

import subprocess
import sys
from contextlib import contextmanager

import pytest
from test_ablate import photos, write_study  # noqa: F401 (the fixture, shared)

from serpentir.errors import UserError
from serpentir.train import load_config, train
from serpentir.train.run_folder import LOCK, hold_run_folder, last_checkpoint
from serpentir_lab.ablate import load_study, run_study

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["model.name=serpent-t", "model.kwargs={embed_dim: 8}", "data.num_workers=0", "progress=false",
        "tensorboard=false", "lpips_at_end=false", "steps=2", "optim.warmup_steps=1", "data.crop_size=16",
        "data.batch_size=2", "data.val_crop_size=32", "data.max_val_images=1", "val_every=2", "ckpt_every=2"]

HOLDER = """
import sys, time
from serpentir.train.run_folder import hold_run_folder
with hold_run_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@contextmanager
def held(folder):
    """A process that holds the run folder, as a training in another job does, killed on leaving."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()  # killed, not ended cleanly: the system releases the lock with the process
        holder.wait()


def test_a_second_training_into_a_held_folder_stops_and_the_folder_is_free_once_its_holder_dies(tmp_path):
    out = tmp_path / "run"
    with held(out) as holder:
        with pytest.raises(UserError) as caught:
            train(load_config(None, TINY + [f"out_dir={out}"]), log=lambda message: None)
        message = str(caught.value)
        assert "\n" not in message and str(out) in message and f"pid {holder.pid}" in message
        assert {p.name for p in out.iterdir()} == {LOCK}  # no config, log or checkpoint written over it
    result = train(load_config(None, TINY + [f"out_dir={out}"]), log=lambda message: None)
    assert result.step == 2 and last_checkpoint(out).is_file()


def test_the_lock_is_released_when_a_training_ends_so_it_can_resume(tmp_path):
    out = tmp_path / "run"
    train(load_config(None, TINY + [f"out_dir={out}"]), log=lambda message: None)
    result = train(load_config(None, TINY + ["steps=3", "resume=true", f"out_dir={out}"]), log=lambda message: None)
    assert result.step == 3


def test_a_run_that_fails_before_writing_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(UserError):
        train(load_config(None, TINY + [f"data.train_dir={tmp_path / 'no-photos'}", f"out_dir={out}"]),
              log=lambda message: None)
    assert not out.exists()


def test_a_folder_that_existed_is_kept_even_when_left_empty(tmp_path):
    with hold_run_folder(tmp_path):
        pass
    assert tmp_path.is_dir() and (tmp_path / LOCK).is_file()


def test_a_second_study_job_goes_on_to_the_variants_no_one_is_training(tmp_path, photos, capsys):  # noqa: F811
    study = load_study(write_study(tmp_path, photos, {"a": [], "b": ["model.kwargs.d_state=4"]}))
    out, runs = tmp_path / "out", tmp_path / "runs"
    busy = study.run_dir(study.variants[0], runs)
    with held(busy) as holder:  # the first job is training variant a
        results = run_study(study, out, runs_dir=runs, latency_size=None, progress=False)
    assert [r.variant for r in results] == ["b"] and not last_checkpoint(busy).is_file()
    assert f"a: left out for now, {busy}: another training (pid {holder.pid})" in capsys.readouterr().err
    again = run_study(study, out, runs_dir=runs, latency_size=None, progress=False)  # its holder gone: a trains
    assert [r.variant for r in again] == ["a", "b"]
