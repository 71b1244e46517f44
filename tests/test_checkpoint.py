"""Checkpoints rebuild their model from metadata alone; a checkpoint that does not fit is a one-line error."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from serpentir.checkpoint import build_model, build_task
from serpentir.checkpoint.format import (load_checkpoint, load_train_state, load_weights, read_metadata,
                                         save_checkpoint, state_path_for)
from serpentir.errors import UserError


pytestmark = pytest.mark.usefixtures("one_thread")


def _model_and_task(task="inpaint", **kwargs):
    deg = build_task(task)
    return build_model("serpent-t", kwargs, channels=3, extra_channels=deg.extra_channels), deg


def test_rebuilds_architecture_and_weights_from_metadata(tmp_path):
    model, task = _model_and_task("inpaint", d_state=4)
    ema = build_model("serpent-t", {"d_state": 4}, channels=3, extra_channels=1)
    path = save_checkpoint(tmp_path / "ck" / "last.safetensors", model=model, task=task, step=12, ema_model=ema,
                           config={"steps": 100}, train_state={"optimizer": {}, "note": "x"})
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    meta = read_metadata(path)
    assert meta["model"] == {"name": "serpent-t", "kwargs": {"d_state": 4, "in_channels": 4, "out_channels": 3}}
    assert meta["task"]["name"] == "inpaint" and meta["task"]["params"] == task.params
    assert meta["step"] == 12 and meta["config"] == {"steps": 100} and meta["channels"] == 3
    assert load_train_state(path)["step"] == 12 and state_path_for(path).name == "last.state.pt"

    rebuilt, rebuilt_task, _ = load_checkpoint(path)  # EMA weights by default
    assert rebuilt_task.name == "inpaint" and rebuilt_task.extra_channels == 1 and not rebuilt.training
    for (k, a), b in zip(ema.state_dict().items(), rebuilt.state_dict().values()):
        assert torch.equal(a, b), k
    raw, _, _ = load_checkpoint(path, use_ema=False)
    x = torch.rand(1, 4, 20, 28)
    with torch.no_grad():
        assert torch.equal(raw(x), model.eval()(x))


def test_mismatched_checkpoint_is_one_line_user_error(tmp_path):
    model, task = _model_and_task("denoise")
    path = save_checkpoint(tmp_path / "a.safetensors", model=model, task=task, step=1)
    bigger = build_model("serpent-b", {}, channels=3)
    with pytest.raises(UserError) as info:
        load_weights(bigger, path)
    message = str(info.value)
    assert "does not match model serpent-b" in message and "\n" not in message
    assert "missing key" in message and "shape mismatch" in message

    # metadata that lies about the architecture: load_checkpoint says so instead of crashing
    tensors = load_file(str(path))
    meta = {"format": "serpentir-checkpoint/1", "task": json.dumps({"name": "denoise", "params": {}}),
            "model": json.dumps({"name": "serpent-t", "kwargs": {"embed_dim": 24}}), "channels": "3", "step": "1"}
    save_file(tensors, str(tmp_path / "lying.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="shape mismatch"):
        load_checkpoint(tmp_path / "lying.safetensors")


@pytest.mark.parametrize("content, needle", [(None, "no such checkpoint"), (b"not a checkpoint", "not a safetensors"),
                                             ("plain", "not a serpentir checkpoint")])
def test_unreadable_checkpoints(tmp_path, content, needle):
    path = tmp_path / "x.safetensors"
    if content == "plain":
        save_file({"w": torch.zeros(2)}, str(path))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=needle):
        load_checkpoint(path)


def test_unknown_model_or_task_in_checkpoint(tmp_path):
    meta = {"task": json.dumps({"name": "dehaze", "params": {}}), "model": json.dumps({"name": "serpent-t", "kwargs": {}})}
    save_file({"model.w": torch.zeros(1)}, str(tmp_path / "t.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="unknown task 'dehaze'"):
        load_checkpoint(tmp_path / "t.safetensors")
    meta = {"task": json.dumps({"name": "denoise", "params": {}}), "model": json.dumps({"name": "serpent-xxl", "kwargs": {}})}
    save_file({"model.w": torch.zeros(1)}, str(tmp_path / "m.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="unknown model 'serpent-xxl'"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_model_channels_follow_the_task():
    model, _ = _model_and_task("inpaint")
    assert model.arch["kwargs"]["in_channels"] == 4 and model.arch["kwargs"]["out_channels"] == 3
    with pytest.raises(UserError, match="in_channels=4"):
        build_model("serpent-t", {"in_channels": 3}, channels=3, extra_channels=1)
