"""How the workshop's measurements name a model: bundled task, LABEL=PATH, or a bare path."""

import pytest

from serpentir.checkpoint import build_model, build_task, save_checkpoint
from serpentir.errors import UserError
from serpentir.infer.catalogue import bundled_weights
from serpentir_lab.model_spec import labelled_checkpoint


@pytest.fixture
def run_folder(tmp_path):
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "last.safetensors", model=build_model("serpent-t", {"embed_dim": 8}, channels=3),
                    task=build_task("denoise"), step=3)
    return run


def test_the_three_ways_to_name_a_model(run_folder):
    assert labelled_checkpoint("deblur") == ("deblur (bundled)", bundled_weights("deblur"))
    last = run_folder / "checkpoints" / "last.safetensors"
    assert labelled_checkpoint(f"mine={run_folder}") == ("mine", last)  # a run folder: its last checkpoint
    assert labelled_checkpoint(f"mine={last}") == ("mine", last)
    assert labelled_checkpoint(str(last)) == (str(last), last)  # a bare path is its own label


@pytest.mark.parametrize("spec", ["=x.safetensors", "label=", "nothing/here.safetensors", "a=nothing/here"])
def test_a_bad_name_is_a_one_line_error(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as error:
        labelled_checkpoint(spec)
    assert "\n" not in str(error.value)
