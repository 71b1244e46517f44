"""Training end to end on the bundled photos: it learns, it logs, it checkpoints, and it resumes exactly."""

import csv
import sys

import pytest
import torch

from serpentir.checkpoint import load_checkpoint
from serpentir.infer import run_tiled
from serpentir.train import load_config, train


pytestmark = pytest.mark.usefixtures("one_thread")


TINY = ["model.name=serpent-t", "data.num_workers=0", "progress=false", "tensorboard=false", "lpips_at_end=false"]


@pytest.fixture(scope="module")
def inpaint_run(tmp_path_factory):
    """serpent-t trained 24 steps on 24x24 crops to inpaint: seconds on one CPU thread."""
    out = tmp_path_factory.mktemp("inpaint")
    config = load_config(None, TINY + [
        "task.name=inpaint", "steps=24", "optim.lr=5e-3", "optim.warmup_steps=3", "data.crop_size=24",
        "data.batch_size=4", "data.val_crop_size=64", "data.max_val_images=3", "val_every=12", "ckpt_every=12",
        "seed=0", "lpips_at_end=true", f"out_dir={out}"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(config, log=lambda message: None), out
    finally:
        torch.set_num_threads(threads)


def test_tiny_model_beats_the_degraded_input(inpaint_run):
    result, _ = inpaint_run
    assert result.step == 24
    # PSNR of the EMA weights on the validation crops vs the degraded input's (about 15.7 vs 14.1 dB)
    assert result.val["psnr"] > result.val["input_psnr"] + 0.5, result.val
    assert result.val["images"] == 3 and result.val["lpips"] == result.val["lpips"]  # LPIPS on at the end


def test_run_writes_logs_config_and_checkpoints(inpaint_run):
    result, out = inpaint_run
    names = {p.name for p in (out / "checkpoints").iterdir()}
    assert names == {"last.safetensors", "last.state.pt", "step_0000012.safetensors", "step_0000012.state.pt",
                     "step_0000024.safetensors", "step_0000024.state.pt"}
    assert (out / "config.yaml").is_file() and load_config(out / "config.yaml").steps == 24
    with open(out / "train_log.csv") as f:
        train_rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in train_rows] == [10, 20, 24]
    assert {"loss", "lr", "images_per_s"} <= set(train_rows[0])
    with open(out / "val_log.csv") as f:
        val_rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in val_rows] == [12, 24]
    assert val_rows[0]["lpips"] == "nan" and float(val_rows[1]["lpips"]) > 0  # LPIPS only at the end by default
    model, task, meta = load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert task.name == "inpaint" and meta["step"] == 24 and meta["config"]["optim"]["lr"] == 5e-3
    for a, b in zip(model.state_dict().values(), result.ema_model.state_dict().values()):
        assert torch.equal(a, b)


def test_tiled_restoration_matches_whole_image(inpaint_run):
    """Tiles see less context than the whole image; blended with overlap the difference is negligible."""
    result, _ = inpaint_run
    from serpentir.data import ImageFolderDataset, sample_images_dir
    from serpentir.degradations import get_task

    item = ImageFolderDataset(sample_images_dir() / "val", get_task("inpaint"), crop_size=80, train=False)[0]
    x = item["input"][None, :, :72]  # 72 x 80: tiles do not divide it evenly
    model = result.ema_model.eval()
    with torch.no_grad():
        whole = model(x).clamp(0, 1)
    tiled = run_tiled(model, x, tile=48, overlap=16).clamp(0, 1)
    mse = (tiled - whole).pow(2).mean().item()
    assert 10 * torch.log10(torch.tensor(1 / mse)).item() > 40  # tiled vs whole agree to > 40 dB


def test_resume_is_bit_identical(tmp_path):
    common = TINY + ["task.name=denoise", "steps=6", "optim.warmup_steps=2", "optim.lr=2e-3", "data.crop_size=16",
                     "data.batch_size=2", "data.repeat=1", "data.val_crop_size=32", "data.max_val_images=1",
                     "val_every=100", "ckpt_every=100", "ema_decay=0.9", "seed=5"]
    straight = train(load_config(None, common + [f"out_dir={tmp_path / 'a'}"]), log=lambda m: None)

    stopped = train(load_config(None, common + [f"out_dir={tmp_path / 'b'}"]), stop_after=3, log=lambda m: None)
    assert stopped.step == 3 and (tmp_path / "b" / "checkpoints" / "last.state.pt").is_file()
    torch.manual_seed(1234)  # whatever happened in between, resuming restores the generators
    resumed = train(load_config(None, common + [f"out_dir={tmp_path / 'b'}", "resume=true"]), log=lambda m: None)
    assert resumed.step == 6
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    for (name, a), b in zip(straight.ema_model.state_dict().items(), resumed.ema_model.state_dict().values()):
        assert torch.equal(a, b), name
    # the log holds each step once, as if the run had never stopped
    with open(tmp_path / "b" / "train_log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [3, 6]


def test_init_from_starts_from_a_checkpoints_ema_weights(inpaint_run, tmp_path):
    """Fine-tuning: the model and its EMA begin as the checkpoint's EMA weights; a mismatch is a UserError."""
    from serpentir.errors import UserError

    result, out = inpaint_run
    common = TINY + ["task.name=inpaint", "steps=4", "data.crop_size=16", "data.batch_size=2",
                     "data.val_crop_size=32", "data.max_val_images=1", "val_every=100", "ckpt_every=100"]
    weights = out / "checkpoints" / "last.safetensors"
    tuned = train(load_config(None, common + [f"init_from={weights}", f"out_dir={tmp_path / 'ft'}"]),
                  stop_after=0, log=lambda m: None)
    fresh = train(load_config(None, common + [f"out_dir={tmp_path / 'fresh'}"]), stop_after=0, log=lambda m: None)
    trained = result.ema_model.state_dict()
    for name, value in tuned.model.state_dict().items():
        assert torch.equal(value, trained[name]), name
        assert torch.equal(tuned.ema_model.state_dict()[name], trained[name]), name
    assert any(not torch.equal(v, trained[k]) for k, v in fresh.model.state_dict().items())
    with pytest.raises(UserError, match="last.safetensors"):
        train(load_config(None, common + ["model.name=unet-t", f"init_from={weights}",
                                          f"out_dir={tmp_path / 'bad'}"]), stop_after=0, log=lambda m: None)


def test_a_time_limit_stops_with_a_checkpoint_that_resumes_exactly(tmp_path):
    from serpentir.errors import UserError

    common = TINY + ["task.name=denoise", "steps=5", "optim.warmup_steps=2", "optim.lr=2e-3", "data.crop_size=16",
                     "data.batch_size=2", "data.repeat=1", "data.val_crop_size=32", "data.max_val_images=1",
                     "val_every=100", "ckpt_every=100", "ema_decay=0.9", "seed=3"]
    straight = train(load_config(None, common + [f"out_dir={tmp_path / 'a'}"]), log=lambda m: None)
    messages = []
    # a limit of 1e-9 minutes has passed after the first step: the run stops there, saving it
    stopped = train(load_config(None, common + [f"out_dir={tmp_path / 'b'}", "time_limit_min=1e-9"]),
                    log=messages.append)
    assert stopped.step == 1 and stopped.checkpoint == tmp_path / "b" / "checkpoints" / "last.safetensors"
    assert any("time limit of 1e-09 min reached at step 1 of 5" in m and "resume=true" in m for m in messages)
    resumed = train(load_config(None, common + [f"out_dir={tmp_path / 'b'}", "resume=true"]), log=lambda m: None)
    assert resumed.step == 5
    for (name, a), b in zip(straight.ema_model.state_dict().items(), resumed.ema_model.state_dict().values()):
        assert torch.equal(a, b), name
    roomy = train(load_config(None, common + [f"out_dir={tmp_path / 'c'}", "time_limit_min=60"]), log=lambda m: None)
    assert roomy.step == 5  # a limit that is not reached changes nothing
    for bad in ("0", "-1", "true"):
        with pytest.raises(UserError, match="time_limit_min"):
            load_config(None, common + [f"time_limit_min={bad}"])


def test_a_time_budget_ends_the_run_with_a_final_validation_and_is_kept_on_resume(tmp_path):
    """Equal wall-clock comparisons: the run stops when its minutes of stepping are spent, validates,
    checkpoints the seconds it spent, and a resumed run goes on from them (or finds nothing to train)."""
    from serpentir.checkpoint import load_train_state
    from serpentir.errors import UserError

    common = TINY + ["task.name=denoise", "steps=8", "optim.warmup_steps=1", "optim.lr=2e-3", "optim.min_lr=0",
                     "data.crop_size=16", "data.batch_size=2", "data.repeat=1", "data.val_crop_size=32",
                     "data.max_val_images=1", "val_every=100", "ckpt_every=100", "log_every=1", "seed=3"]
    messages = []
    # a budget of 1e-9 minutes is spent by the first step: that step is the run's last
    spent = train(load_config(None, common + [f"out_dir={tmp_path / 'a'}", "time_budget_min=1e-9"]),
                  log=messages.append)
    assert spent.step == 1 and spent.val is not None  # the final validation ran at the budget's end
    assert any("time budget of 1e-09 min spent at step 1" in m for m in messages)
    seconds = load_train_state(tmp_path / "a" / "checkpoints" / "last.safetensors")["train_seconds"]
    assert seconds > 0
    messages.clear()
    again = train(load_config(None, common + [f"out_dir={tmp_path / 'a'}", "time_budget_min=1e-9", "resume=true"]),
                  log=messages.append)
    assert again.step == 1 and any("budget spent; nothing to train" in m for m in messages)

    # a budget far from spent: the rate stays at its peak after the warm-up (steps alone would decay it
    # to 0 by step 8), and the run ends at the step cap; stopped half-way, the seconds carry on
    roomy = common + [f"out_dir={tmp_path / 'b'}", "time_budget_min=60"]
    train(load_config(None, roomy), stop_after=4, log=lambda m: None)
    half = load_train_state(tmp_path / "b" / "checkpoints" / "last.safetensors")["train_seconds"]
    done = train(load_config(None, roomy + ["resume=true"]), log=lambda m: None)
    assert done.step == 8
    assert load_train_state(tmp_path / "b" / "checkpoints" / "last.safetensors")["train_seconds"] > half > 0
    with open(tmp_path / "b" / "train_log.csv") as f:
        rates = [float(r["lr"]) for r in csv.DictReader(f)]
    assert len(rates) == 8 and all(r == pytest.approx(2e-3, rel=1e-3) for r in rates)
    for bad in ("0", "-1", "true"):
        with pytest.raises(UserError, match="time_budget_min"):
            load_config(None, common + [f"time_budget_min={bad}"])


@pytest.mark.parametrize("native", [True, False])
def test_bf16_autocast_on_the_cpu_only_where_it_is_native(tmp_path, monkeypatch, native):
    """amp=bf16 on the CPU runs the matrix work in bfloat16 where the processor has it (the weights stay
    float32); elsewhere it says so and trains in float32, as emulated bfloat16 is several times slower."""
    from serpentir.train import loop

    monkeypatch.setattr(loop, "native_cpu_bf16", lambda: native)
    seen: set = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: seen.add(out.dtype) if isinstance(module, torch.nn.Linear) else None)
    messages: list[str] = []
    config = load_config(None, TINY + ["task.name=denoise", "steps=2", "data.crop_size=24", "data.batch_size=2",
                                       "data.max_val_images=1", "val_every=2", "amp=bf16", f"out_dir={tmp_path}"])
    try:
        result = train(config, log=messages.append)
    finally:
        hook.remove()
    assert (torch.bfloat16 in seen) is native and torch.float32 in seen  # validation runs in float32
    assert any("needs a CUDA GPU or a CPU with native bfloat16" in m for m in messages) is not native
    model, _, _ = load_checkpoint(tmp_path / "checkpoints" / "last.safetensors")
    assert all(p.dtype == torch.float32 for p in model.parameters()) and result.val["psnr"] == result.val["psnr"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo, Linux's CPU flags")
def test_native_cpu_bf16_agrees_with_the_cpu_flags():
    from serpentir.device import native_cpu_bf16

    with open("/proc/cpuinfo") as f:
        flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    assert native_cpu_bf16() == bool(flags & {"avx512_bf16", "amx_tile"})
