"""What a run learns from is declared on the config fields, and a new setting cannot rename run folders.

`serpentir ablate` names every variant's run folder by the digest of its learnt settings, so a finished
variant is found again instead of retrained; the digests below were computed by the code that first
named those folders (before optim.fft_weight existed) and must not change.
"""

import pytest

from serpentir.train import (TrainConfig, config_fields, learning_digest, learnt_settings, load_config,
                             not_learnt_keys)

# every setting there was when run folders were first named by digest (2026-12-04)
FIRST_DIGEST_FIELDS = {
    "model.name", "model.kwargs", "task.name", "task.params", "data.train_dir", "data.val_dir", "data.channels",
    "data.crop_size", "data.val_crop_size", "data.max_val_images", "data.batch_size", "data.num_workers",
    "data.repeat", "data.skip_bad", "data.cache_mb", "optim.lr", "optim.min_lr", "optim.weight_decay",
    "optim.betas", "optim.warmup_steps", "optim.grad_clip", "optim.loss", "optim.charbonnier_eps", "steps",
    "ema_decay", "amp", "val_every", "ckpt_every", "log_every", "lpips_every_val", "lpips_at_end", "seed",
    "out_dir", "resume", "init_from", "device", "tensorboard", "progress",
}


def test_the_not_learnt_keys_are_the_ones_the_hand_written_list_named():
    assert set(not_learnt_keys()) == {"out_dir", "progress", "tensorboard", "device", "resume", "data.num_workers",
                                      "log_every", "ckpt_every", "val_every", "lpips_every_val", "lpips_at_end",
                                      "time_limit_min"}


def test_existing_run_folders_keep_their_names():
    assert learning_digest(TrainConfig()) == "6862ceb2df"
    config = load_config(None, ["optim.lr=1e-3", "model.kwargs={directions: 1}", "out_dir=x", "data.num_workers=0"])
    assert learning_digest(config) == "63d1f4376b"


def test_where_and_how_visibly_a_run_goes_does_not_change_its_digest():
    base = learning_digest(TrainConfig())
    moved = load_config(None, ["out_dir=elsewhere", "device=cpu", "log_every=1", "progress=false", "resume=true",
                               "tensorboard=false", "data.num_workers=0", "val_every=7", "lpips_at_end=false"])
    assert learning_digest(moved) == base


@pytest.mark.parametrize("override", ["optim.fft_weight=0.05", "optim.lr=1e-3", "seed=1", "optim.loss=psnr",
                                      "task.params={sigma: 2.0}"])
def test_what_is_learnt_changes_the_digest(override):
    assert learning_digest(load_config(None, [override])) != learning_digest(TrainConfig())


def test_a_setting_added_later_is_left_out_only_at_its_default():
    assert "optim.fft_weight" not in learnt_settings(TrainConfig())
    assert learnt_settings(load_config(None, ["optim.fft_weight=0.1"]))["optim.fft_weight"] == 0.1


def test_every_new_setting_declares_what_it_is_to_the_digest():
    """A field added after the first digests must be ADDED_LATER or NOT_LEARNT, or every folder is renamed."""
    undeclared = [key for key, f in config_fields() if key not in FIRST_DIGEST_FIELDS
                  and f.metadata.get("learnt", True) and not f.metadata.get("added_later")]
    assert not undeclared, f"mark these config fields ADDED_LATER or NOT_LEARNT (serpentir/train/config.py): {undeclared}"
