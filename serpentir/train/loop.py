"""The training loop: any registered model on any task, one process or many (torchrun), resumable exactly.

Exactness on resume rests on three things: the data order is a function of the step
(data_order.py), the learning rate is a function of the step (schedule.py), and every stateful
object (model, EMA, optimizer, grad scaler, RNGs) is saved and restored. A run stopped at step k
and resumed ends with bit-identical weights to one that ran straight through.
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint.build import build_model, build_task
from ..checkpoint.format import load_train_state, load_weights, read_metadata, save_checkpoint
from ..device import native_cpu_bf16
from ..errors import UserError
from ..infer.evaluate import evaluate_model, summarize
from .config import TrainConfig, config_to_dict, save_config, validate_config
from .data_order import EpochIndexedDataset, StepBatchSampler
from .distributed import DistContext, any_rank, init_distributed, shutdown_distributed
from .ema import ModelEMA
from .rng import capture_rng_state, derive_seed, restore_rng_state
from .run_folder import CHECKPOINT_DIR, CONFIG, LAST, hold_run_folder, last_checkpoint, numbered_checkpoint
from .run_log import RunLog
from .schedule import lr_at, lr_at_time, time_budget_spent


@dataclass
class TrainResult:
    """What a finished (or stopped) run leaves: its weights, final validation and where files went."""

    step: int
    model: nn.Module
    ema_model: nn.Module | None
    val: dict | None
    checkpoint: Path | None
    out_dir: Path


def train(config: TrainConfig, *, stop_after: int | None = None, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train as `config` says; under torchrun every rank calls this and rank 0 writes the files.

    stop_after: stop (writing a checkpoint) once this step is done, as if interrupted; a later run
    with resume=true continues from there to config.steps.
    """
    from tqdm import tqdm

    validate_config(config)
    log = log or tqdm.write  # prints without tearing the progress bar
    ctx = init_distributed(config.device)
    finished = False
    try:
        with hold_run_folder(config.out_dir, enabled=ctx.is_main):  # one training per run folder at a time
            result = _Run(config, ctx, log).run(stop_after)
        finished = True
        return result
    finally:
        shutdown_distributed(ctx, wait=finished)


def make_loss(name: str, eps: float = 1e-3, fft_weight: float = 0.0) -> Callable[[Tensor, Tensor], Tensor]:
    """l1; Charbonnier (a smooth L1: sqrt(d^2 + eps^2)); or psnr, the mean of each image's log-MSE.

    l1 and Charbonnier average errors over the batch, so a noisy crop's large error drowns a mildly
    blurred crop's; the PSNR loss (NAFNet's) weighs every image by its own error. `fft_weight` adds
    that weight times the mean absolute difference of the 2-D spectra (orthonormal FFT).
    """
    if name == "l1":
        base = F.l1_loss
    elif name == "charbonnier":
        def base(pred: Tensor, target: Tensor) -> Tensor:
            return torch.sqrt((pred - target) ** 2 + eps * eps).mean()
    elif name == "psnr":
        def base(pred: Tensor, target: Tensor) -> Tensor:
            mse = (pred - target).pow(2).flatten(1).mean(1)
            return 10.0 * torch.log10(mse + 1e-8).mean()  # minus the PSNR of a [0, 1] image, averaged
    else:
        raise UserError(f"unknown loss {name!r}; use l1, charbonnier or psnr")
    if not fft_weight:
        return base

    def with_spectrum(pred: Tensor, target: Tensor) -> Tensor:
        spectrum = torch.fft.rfft2(pred - target, norm="ortho")
        return base(pred, target) + fft_weight * torch.view_as_real(spectrum).abs().mean()

    return with_spectrum


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices and kernels only: decaying biases, norms and SSM A/D hurts."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def resolve_resume(resume: bool | str, out_dir: Path) -> Path | None:
    """The checkpoint to resume from: None for a fresh start; True means out_dir's last, if any."""
    if resume is False or resume in ("", "false", "no"):
        return None
    if resume is True or resume in ("true", "yes", "last"):
        path = last_checkpoint(out_dir)
        return path if path.is_file() else None
    path = Path(resume)
    if path.is_dir():
        for candidate in (last_checkpoint(path), path / LAST):
            if candidate.is_file():
                return candidate
        raise UserError(f"{path}: no {LAST} to resume from in this folder")
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint to resume from")
    return path


class _Run:
    """One training run's state; split from `train` so setup, stepping and saving read separately."""

    def __init__(self, config: TrainConfig, ctx: DistContext, log: Callable[[str], None]):
        self.config, self.ctx, self.log = config, ctx, log
        self.out_dir = Path(config.out_dir)
        self.device = ctx.device
        _seed_everything(config.seed)

        self.task = build_task(config.task.name, config.task.params)
        self.channels = config.data.channels
        self.model = build_model(config.model.name, config.model.kwargs, channels=self.channels,
                                 extra_channels=self.task.extra_channels).to(self.device)
        if config.init_from:  # before the EMA copies the model; a resumed run overwrites both anyway
            load_weights(self.model, config.init_from, use_ema=True)
        self.ema = ModelEMA(self.model, config.ema_decay) if config.ema_decay > 0 else None
        o = config.optim
        self.optimizer = torch.optim.AdamW(param_groups(self.model, o.weight_decay), lr=o.lr, betas=tuple(o.betas))
        self.loss_fn = make_loss(o.loss, o.charbonnier_eps, o.fft_weight)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

        self.train_set = self._dataset(train=True)
        self.val_pairs = self._val_pairs()
        self.step = 0
        self.spent_s = 0.0  # seconds of stepping so far (a time budget's clock), kept in checkpoints
        self.resumed_from = resolve_resume(config.resume, self.out_dir)
        if self.resumed_from is not None:
            self._resume(self.resumed_from)
        elif config.resume not in (False, "", "false", "no") and ctx.is_main:
            log(f"nothing to resume in {self.out_dir / CHECKPOINT_DIR}; starting from step 0")

        self.net: nn.Module = self.model
        if ctx.is_distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
            # depthwise conv weights (C, 1, k, k) get gradients whose stride on the size-1 axis differs from
            # the bucket's; the layout is the same, so DDP's warning about it is noise for the user
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

    # --- setup ---------------------------------------------------------------------------------

    def _amp_dtype(self) -> torch.dtype | None:
        amp = self.config.amp
        if amp == "none":
            return None
        if self.device.type == "cpu" and amp == "bf16" and native_cpu_bf16():
            return torch.bfloat16  # the matrix work in bfloat16; the scan computes in float32 (ops/scan_core.py)
        if self.device.type != "cuda":
            if self.ctx.is_main:
                needs = "a CUDA GPU or a CPU with native bfloat16" if amp == "bf16" else "a CUDA GPU"
                self.log(f"amp={amp} needs {needs}; training in float32 on {self.device.type}")
            return None
        return torch.bfloat16 if amp == "bf16" else torch.float16

    def _dataset(self, *, train: bool):
        from ..data import ImageFolderDataset, sample_images_dir

        d = self.config.data
        root = (d.train_dir if train else d.val_dir) or sample_images_dir() / ("train" if train else "val")
        kwargs = dict(train=train, crop_size=d.crop_size if train else d.val_crop_size,  # None: whole images
                      channels=d.channels, seed=self.config.seed, skip_bad=d.skip_bad, repeat=d.repeat if train else 1,
                      cache_mb=d.cache_mb)
        try:
            dataset = ImageFolderDataset(root, self.task, **kwargs)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(f"{root}: {e}") from None
        if len(dataset) == 0:
            raise UserError(f"{root}: no training images found" if train else f"{root}: no validation images found")
        return dataset

    def _val_pairs(self) -> list[tuple[str, Tensor, Tensor]]:
        """The validation crops, loaded once: they are the same at every validation."""
        if not self.ctx.is_main:
            return []
        dataset = self._dataset(train=False)
        n = len(dataset) if self.config.data.max_val_images is None else min(len(dataset), self.config.data.max_val_images)
        pairs = []
        for i in range(n):
            item = dataset[i]
            pairs.append((item["name"], item["input"], item["target"]))
        return pairs

    def _resume(self, path: Path) -> None:
        meta = read_metadata(path)
        c = self.config
        mine = {"model": self.model.arch, "task": {"name": self.task.name, "params": dict(self.task.params)}}
        theirs = {"model": meta["model"], "task": meta["task"]}
        for key in ("model", "task"):
            if json.dumps(mine[key], sort_keys=True, default=list) != json.dumps(theirs[key], sort_keys=True, default=list):
                raise UserError(f"cannot resume from {path}: it was trained with {key} {theirs[key]}, "
                                f"the config asks for {mine[key]}")
        state = load_train_state(path)
        if int(state["step"]) != meta["step"]:
            raise UserError(f"cannot resume from {path}: weights are at step {meta['step']} but the training state "
                            f"is at step {state['step']} (interrupted while saving?)")
        load_weights(self.model, path, use_ema=False)
        if self.ema is not None:
            load_weights(self.ema.module, path, use_ema=True)
            self.ema.updates = int(state.get("ema_updates", meta["step"]))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        self.step = meta["step"]
        self.spent_s = float(state.get("train_seconds", 0.0))
        saved_world = int(state.get("world_size", self.ctx.world_size))
        if saved_world != self.ctx.world_size and self.ctx.is_main:
            self.log(f"resuming a {saved_world}-process run with {self.ctx.world_size}: training goes on, but the data "
                     "order differs from an uninterrupted run")
        if (self.step >= c.steps or self._budget_spent()) and self.ctx.is_main:
            done = f"step {self.step} >= steps={c.steps}" if self.step >= c.steps else \
                f"{self.spent_s / 60:.1f} min of its {c.time_budget_min:g}-min budget spent"
            self.log(f"{path} is already at {done}; nothing to train")
        if self.ctx.is_main:
            self.log(f"resumed from {path} at step {self.step}")

    # --- running -------------------------------------------------------------------------------

    def _loader(self, start: int, stop: int):
        from torch.utils.data import DataLoader

        d, c = self.config.data, self.config
        sampler = StepBatchSampler(len(self.train_set), d.batch_size, seed=c.seed, start_step=start, stop_step=stop,
                                   rank=self.ctx.rank, world_size=self.ctx.world_size)
        return DataLoader(EpochIndexedDataset(self.train_set, c.seed), batch_sampler=sampler, num_workers=d.num_workers,
                          pin_memory=self.device.type == "cuda",
                          generator=torch.Generator().manual_seed(derive_seed(c.seed, start)),
                          persistent_workers=False)

    def run(self, stop_after: int | None) -> TrainResult:
        from tqdm import tqdm

        c, ctx = self.config, self.ctx
        end = c.steps if stop_after is None else max(self.step, min(c.steps, stop_after))
        if ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(c, self.out_dir / CONFIG)
        runlog = RunLog(self.out_dir, enabled=ctx.is_main, tensorboard=c.tensorboard, resume_step=self.step)
        bar = tqdm(total=c.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True,
                   disable=True if not (c.progress and ctx.is_main) else None)
        images_per_step = c.data.batch_size * ctx.world_size
        loss_sum, loss_count, tick, tick_step = torch.zeros((), device=self.device), 0, time.perf_counter(), self.step
        val, checkpoint = None, None
        limit = c.time_limit_min
        deadline = None if limit is None else time.monotonic() + 60 * limit
        self.model.train()
        try:
            if self._budget_spent():
                return TrainResult(self.step, self.model, self.ema.module if self.ema else None, None, None, self.out_dir)
            mark = time.perf_counter()
            for batch in self._loader(self.step, end):
                loss_sum += self._update(batch)
                loss_count += 1
                self.step += 1
                if c.time_budget_min is not None and self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)  # the clock counts the GPU's work, not just its queueing
                self.spent_s += time.perf_counter() - mark  # the batch's loading and the update, nothing else
                budget_spent = c.time_budget_min is not None and any_rank(ctx, self._budget_spent())
                out_of_time = deadline is not None and any_rank(ctx, time.monotonic() >= deadline)
                if self.step % c.log_every == 0 or self.step == end or out_of_time or budget_spent:
                    loss = (loss_sum / loss_count).item()
                    if not math.isfinite(loss):
                        raise UserError(f"the loss became {loss} by step {self.step}; lower optim.lr or set optim.grad_clip")
                    now = time.perf_counter()
                    rate = images_per_step * (self.step - tick_step) / max(now - tick, 1e-9)
                    runlog.train(self.step, {"loss": loss, "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": rate})
                    bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.1f}")
                    loss_sum.zero_()
                    loss_count, tick, tick_step = 0, now, self.step
                bar.update(1)
                if self.step % c.val_every == 0 or self.step == c.steps or budget_spent:
                    val = self._validate(runlog, final=self.step == c.steps or budget_spent)
                if self.step % c.ckpt_every == 0 or self.step == end or out_of_time or budget_spent:
                    checkpoint = self._save(periodic=self.step % c.ckpt_every == 0)
                if budget_spent:
                    if ctx.is_main:
                        self.log(f"time budget of {c.time_budget_min:g} min spent at step {self.step}: checkpoint {checkpoint}")
                    break
                if out_of_time and self.step < end:
                    if ctx.is_main:
                        self.log(f"time limit of {limit:g} min reached at step {self.step} of {c.steps}: "
                                 f"checkpoint {checkpoint}; train again with resume=true to continue")
                    break
                mark = time.perf_counter()
        finally:
            bar.close()
            runlog.close()
        return TrainResult(self.step, self.model, self.ema.module if self.ema else None, val, checkpoint, self.out_dir)

    def _budget_spent(self) -> bool:
        return time_budget_spent(self.spent_s, self.config.time_budget_min)

    def _lr(self) -> float:
        o, budget = self.config.optim, self.config.time_budget_min
        if budget is not None:
            return lr_at_time(self.step, self.spent_s, 60 * budget, base_lr=o.lr, warmup_steps=o.warmup_steps,
                              min_lr=o.min_lr)
        return lr_at(self.step, base_lr=o.lr, warmup_steps=o.warmup_steps, total_steps=self.config.steps,
                     min_lr=o.min_lr)

    def _update(self, batch: dict) -> Tensor:
        """One optimizer step on one batch; returns the (detached) loss."""
        c = self.config
        lr = self._lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = batch["input"].to(self.device, non_blocking=True)
        y = batch["target"].to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            out = self.net(x)
        loss = self.loss_fn(out.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if c.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.optim.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach()

    def _validate(self, runlog: RunLog, *, final: bool) -> dict | None:
        """Mean scores of the EMA weights (the ones saved) on the validation crops; rank 0 only."""
        if not self.ctx.is_main or not self.val_pairs:
            return None
        c = self.config
        model = self.ema.module if self.ema is not None else self.model
        with_lpips = c.lpips_every_val or (final and c.lpips_at_end)
        pairs = [(n, x.to(self.device), y.to(self.device)) for n, x, y in self.val_pairs]
        # forked generators: building LPIPS draws random init weights, which must not shift training's stream
        with torch.random.fork_rng(devices=[self.device.index] if self.device.type == "cuda" else []):
            summary = summarize(evaluate_model(model, pairs, with_lpips=with_lpips))
        runlog.val(self.step, {k: summary[k] for k in ("psnr", "ssim", "lpips", "input_psnr", "input_ssim", "input_lpips")})
        lp = "" if math.isnan(summary["lpips"]) else f", LPIPS {summary['lpips']:.4f} (input {summary['input_lpips']:.4f})"
        message = (f"step {self.step}: val PSNR {summary['psnr']:.2f} dB (input {summary['input_psnr']:.2f}), "
                   f"SSIM {summary['ssim']:.4f} (input {summary['input_ssim']:.4f}){lp} on {summary['images']} images")
        self.log(message)
        return summary

    def _save(self, *, periodic: bool) -> Path | None:
        """`last` (and, every ckpt_every steps, a numbered copy) with the full training state; rank 0 only."""
        if not self.ctx.is_main:
            return None
        state = {"optimizer": self.optimizer.state_dict(), "rng": capture_rng_state(),
                 "ema_updates": self.ema.updates if self.ema else 0,
                 "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                 "world_size": self.ctx.world_size, "train_seconds": self.spent_s}
        kwargs = dict(model=self.model, task=self.task, step=self.step, ema_model=self.ema.module if self.ema else None,
                      config=config_to_dict(self.config), train_state=state)
        last = save_checkpoint(last_checkpoint(self.out_dir), **kwargs)
        if periodic:
            save_checkpoint(numbered_checkpoint(self.out_dir, self.step), **kwargs)
        return last


def _seed_everything(seed: int) -> None:
    """Same seed on every rank: identical initial weights, before DDP even broadcasts them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
