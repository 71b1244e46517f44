"""The training config (YAML <-> dataclasses, overrides, bad keys), the LR schedule and the data order."""

import math

import pytest
import yaml

from serpentir.errors import UserError
from serpentir.train.config import config_from_dict, config_to_dict, load_config, save_config, TrainConfig
from serpentir.train.data_order import StepBatchSampler
from serpentir.train.schedule import lr_at, lr_at_time


def test_defaults_round_trip_through_yaml(tmp_path):
    config = load_config(None, ["model.name=serpent-b", "task.params.sigma=2.0", "data.crop_size=48"])
    path = tmp_path / "c.yaml"
    save_config(config, path)
    assert load_config(path) == config
    assert config_from_dict(config_to_dict(config)) == config


def test_yaml_and_overrides_are_typed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  betas: [0.8, 0.9]\nsteps: 50\ndata:\n  val_crop_size: null\n")
    config = load_config(path, ["steps=70", "optim.warmup_steps=5", "resume=true", "seed=3",
                                "optim.grad_clip=null", "task.params.noise_sigma=0.02", "model.kwargs.d_state=4"])
    assert config.optim.lr == 1e-3 and isinstance(config.optim.lr, float)  # YAML reads 1e-3 as a string
    assert config.steps == 70 and config.seed == 3 and config.optim.warmup_steps == 5
    assert config.optim.betas == [0.8, 0.9]
    assert config.data.val_crop_size is None and config.optim.grad_clip is None
    assert config.resume is True
    assert config.task.params == {"noise_sigma": 0.02} and config.model.kwargs == {"d_state": 4}
    assert load_config(None, ["resume=runs/x/checkpoints/last.safetensors"]).resume == "runs/x/checkpoints/last.safetensors"


@pytest.mark.parametrize("override, needle", [
    ("optim.lrr=1", "unknown config key 'optim.lrr'"),
    ("stepz=3", "unknown config key 'stepz'"),
    ("data.nope.deeper=3", "unknown config key 'data.nope'"),
    ("steps=abc", "'steps' must be int"),
    ("steps=0", "steps must be a positive integer"),
    ("optim.loss=l2", "optim.loss must be one of l1, charbonnier"),
    ("amp=fp8", "amp must be one of"),
    ("ema_decay=1.5", "ema_decay must be in [0, 1)"),
    ("data=3", "'data' is a section"),
    ("steps", "expected key=value"),
])
def test_bad_keys_and_values_are_one_line_errors(override, needle):
    with pytest.raises(UserError) as info:
        load_config(None, [override])
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_key_in_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(UserError, match="unknown config key 'optim.learning_rate'"):
        load_config(path)
    path.write_text("steps: [1\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("text, key, line, first", [
    ("model: the\nsteps: 3\nmodel:\n  name: serpent-t\n", "model", 3, 1),  # the stray line of issue 19
    ("optim:\n  lr: 1e-3\n  warmup_steps: 5\n  lr: 2e-3\n", "lr", 4, 2),  # nested
])
def test_a_key_given_twice_is_a_one_line_error_naming_file_key_and_line(tmp_path, text, key, line, first):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert message == f"{path}, line {line}: key {key!r} is given twice (first on line {first})"
    # the same keys in different mappings are not duplicates
    path.write_text("model:\n  name: serpent-t\ntask:\n  name: denoise\n")
    assert load_config(path).task.name == "denoise"


def test_committed_configs_have_no_duplicate_keys():
    from pathlib import Path

    from serpentir.strict_yaml import load_yaml_file

    configs = sorted((Path(__file__).parent.parent / "configs").rglob("*.yaml"))
    for path in configs:
        assert isinstance(load_yaml_file(path), dict), path  # raises UserError naming a duplicate


def test_bundled_configs_load():
    from pathlib import Path

    root = Path(__file__).parent.parent / "configs"
    configs = sorted(root.rglob("*.yaml"))
    assert len(configs) > 3
    for path in configs:
        if path.parent.name == "ablations" and not path.stem.startswith("base"):  # a study file: its variants are configs
            from serpentir_lab.ablate import load_study

            assert len(load_study(path).variants) >= 2, path  # a study compares
            continue
        config = load_config(path)
        if path.parent.name != "ablations":  # the studies' shared base config names no task in its file name
            assert config.task.name in path.stem
        if path.parent == root:  # the examples are named model_task
            assert config.model.name in path.stem
        assert set(yaml.safe_load(path.read_text())) == set(config_to_dict(TrainConfig())), path  # every key spelled out


def test_lr_schedule_warmup_then_cosine():
    kw = dict(base_lr=1.0, warmup_steps=4, total_steps=14, min_lr=0.1)
    # warm-up: (step + 1) / warmup, so the first update already moves
    assert [lr_at(s, **kw) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # cosine over steps 4..13 (9 intervals): min + (1 - min) * (1 + cos(pi * t / 9)) / 2
    assert lr_at(4, **kw) == pytest.approx(1.0)
    assert lr_at(7, **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3 / 9)))  # 0.775
    assert lr_at(7, **kw) == pytest.approx(0.775)
    assert lr_at(13, **kw) == pytest.approx(0.1)  # the last update uses min_lr
    assert lr_at(20, **kw) == pytest.approx(0.1)  # past the end stays at min_lr
    assert lr_at(0, base_lr=2.0, warmup_steps=0, total_steps=5) == 2.0


def test_a_time_budget_schedule_decays_by_the_share_of_the_budget_spent():
    kw = dict(base_lr=1.0, warmup_steps=4, min_lr=0.1)
    # the warm-up is the steps' one, whatever time it took
    assert [lr_at_time(s, 50.0, 100.0, **kw) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at_time(4, 0.0, 100.0, **kw) == pytest.approx(1.0)
    assert lr_at_time(9, 25.0, 100.0, **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at_time(9, 50.0, 100.0, **kw) == pytest.approx(0.55)  # half the budget: half-way down
    assert lr_at_time(99, 100.0, 100.0, **kw) == pytest.approx(0.1)
    assert lr_at_time(99, 130.0, 100.0, **kw) == pytest.approx(0.1)  # an overrun stays at min_lr


def test_data_order_is_a_function_of_the_step_and_shards_by_rank():
    full = list(StepBatchSampler(5, 3, seed=7, start_step=0, stop_step=6))
    resumed = list(StepBatchSampler(5, 3, seed=7, start_step=4, stop_step=6))
    assert resumed == full[4:]
    flat = [pair for batch in full for pair in batch]
    for epoch in range(3):  # each epoch is a permutation of the dataset
        assert sorted(i for e, i in flat if e == epoch) == list(range(5))
    assert list(StepBatchSampler(5, 3, seed=8, start_step=0, stop_step=6)) != full
    ranks = [list(StepBatchSampler(5, 2, seed=7, start_step=0, stop_step=3, rank=r, world_size=2)) for r in (0, 1)]
    single = list(StepBatchSampler(5, 4, seed=7, start_step=0, stop_step=3))
    for step in range(3):  # two ranks of batch 2 see exactly what one process of batch 4 sees
        assert ranks[0][step] + ranks[1][step] == single[step]
