"""Loading serpentir weights through spandrel: the architecture recovered from tensor shapes alone, and the
outputs of every bundled model (and of a checkpoint from `serpentir train`) equal to serpentir.restore's.

The first half needs no spandrel (shape recovery, descriptors as plain data, the calls a descriptor
makes). The second half runs only where spandrel imports: it needs a torchvision that loads with the
installed torch (scripts/spandrel_venv.sh builds such a venv and runs this file there).
"""

import json
import random
import subprocess
import sys
from types import MappingProxyType

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from skimage import data

import serpentir
from serpentir.degradations import down_up, downscale
from serpentir.integrations.spandrel import (ARCH_ID, SUPPORTS_BFLOAT16, SUPPORTS_HALF, build, bundled_weight_files,
                                             describe, detect, install, known_checkpoints, restore_masked,
                                             select_weights, upscale_then_restore)
from serpentir.models.from_state_dict import CONFIG_KEYS, NotSerpentError, full_config, named_configuration, recover_serpent

pytestmark = pytest.mark.usefixtures("one_thread")
BUNDLED = MappingProxyType({p.stem: p for p in bundled_weight_files()})  # read-only


def _photo(h: int, w: int) -> torch.Tensor:
    """A real (1, 3, h, w) crop in [0, 1]."""
    return torch.from_numpy(data.astronaut()[90:90 + h, 140:140 + w].copy()).permute(2, 0, 1)[None].float() / 255


def _hole(h: int, w: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4:h // 2, w // 3:2 * w // 3] = 1
    return mask


def _metadata(path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata()
    return {"model": json.loads(raw["model"]), "task": json.loads(raw["task"])}


def _shapes_only(path, prefix: str = "model.") -> dict:
    """Keys and shapes of a file's tensors, no values and no metadata."""
    with safe_open(str(path), framework="pt") as f:
        return {k[len(prefix):]: tuple(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith(prefix)}


def _expected_purpose(meta: dict) -> tuple[str, int]:
    if meta["task"]["name"] == "inpaint":
        return "Inpainting", 1
    scale = int(meta["task"]["params"].get("scale", 1))
    return ("SR", scale) if scale > 1 else ("Restoration", 1)


def _restore_reference(task: str, model=None) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """(serpentir.restore's output, then the arguments a spandrel descriptor is called with) for a task."""
    if task.startswith("sr"):  # the small image; restore takes it bicubic-upscaled, as training made its inputs
        clean = _photo(64, 76)[0]
        ref = serpentir.restore(down_up(clean, 4), task=None if model else task, model=model)
        return ref, (downscale(clean, 4)[None],)
    if task == "inpaint":  # restore takes the holes zeroed (training's fill); spandrel passes the photo and mask
        image, mask = _photo(45, 61), _hole(45, 61)
        ref = serpentir.restore((image * (1 - mask))[0], task=task, mask=mask[0, 0].numpy())
        return ref, (image, mask)
    image = _photo(45, 61)
    return serpentir.restore(image[0], task=None if model else task, model=model), (image,)


@pytest.fixture(scope="module")
def sr_checkpoint(tmp_path_factory):
    """A real training checkpoint (model and EMA weights): two steps of `serpentir train` on sr4, with the two
    settings shapes cannot tell exactly: scan order cross, expand 2.3 (shapes give any ratio that rounds alike)."""
    out = tmp_path_factory.mktemp("train")
    subprocess.run([sys.executable, "-m", "serpentir", "train", "task.name=sr4", "model.name=serpent-t", "steps=2",
                    "model.kwargs.order=cross", "model.kwargs.expand=2.3",
                    "data.crop_size=24", "data.batch_size=2", "data.num_workers=0", "progress=false",
                    "tensorboard=false", "lpips_at_end=false", "val_every=2", "ckpt_every=2", "data.max_val_images=1",
                    "data.val_crop_size=32", "ema_decay=0.5", "optim.lr=0.02", "--out-dir", str(out)],
                   check=True, capture_output=True)
    return out / "checkpoints" / "last.safetensors"


# ---- without spandrel: recovery from shapes -------------------------------------------------------------

@pytest.mark.parametrize("stem", sorted(BUNDLED))
def test_bundled_architecture_is_recovered_from_shapes_alone(stem):
    meta = _metadata(BUNDLED[stem])["model"]
    assert recover_serpent(_shapes_only(BUNDLED[stem])) == full_config(meta["name"], meta["kwargs"])


def _random_config(rng: random.Random) -> dict:
    out_channels = rng.choice([1, 3])
    return dict(embed_dim=rng.choice([8, 12, 16, 20]), depths=tuple(rng.choice([1, 1, 2, 0]) for _ in range(rng.randint(1, 3))),
                bottleneck_depth=rng.choice([0, 1, 2]), patch_size=rng.choice([1, 2, 3]), d_state=rng.choice([2, 4, 8]),
                expand=rng.choice([1.0, 1.5, 2.0, 2.3]), directions=rng.choice([1, 2, 4]), out_channels=out_channels,
                in_channels=out_channels + rng.choice([0, 1]), order=rng.choice(["diagonal", "cross"]))


@pytest.mark.parametrize("seed", range(10))
def test_random_configurations_round_trip_through_shapes(seed):
    """create -> state dict -> shapes only -> recovered settings -> create -> strict load -> the same outputs."""
    config = _random_config(random.Random(seed))
    torch.manual_seed(seed)
    original = serpentir.create_model("serpent-b", **config).eval()
    shapes = {k: tuple(v.shape) for k, v in original.state_dict().items()}
    order = config["order"] if config["directions"] == 4 else "diagonal"  # the one setting shapes do not hold
    recovered = recover_serpent(shapes, order=order)
    same = [k for k in CONFIG_KEYS if k not in ("expand", "order", "directions", "d_state")]
    if sum(config["depths"]) + config["bottleneck_depth"]:  # without VSS blocks these three have no tensors
        same += ["directions", "d_state"]
        assert int(recovered["expand"] * config["embed_dim"]) == int(config["expand"] * config["embed_dim"])
    assert {k: recovered[k] for k in same} == {k: config[k] for k in same}
    name, overrides = named_configuration(recovered)
    rebuilt = serpentir.create_model(name, **overrides).eval()
    rebuilt.load_state_dict(original.state_dict(), strict=True)
    x = torch.rand(1, config["in_channels"], 19, 23)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), original(x)), (config, name, overrides)


def test_scan_order_is_not_in_the_shapes_but_changes_the_output():
    """Why the order comes from metadata: diagonal and cross have identical tensors, different outputs."""
    torch.manual_seed(0)
    cross = serpentir.create_model("serpent-t", order="cross").eval()
    with torch.no_grad():
        cross.head.proj.weight.normal_(std=0.1)  # a head large enough for the scan's difference to show
    diagonal = serpentir.create_model("serpent-t")
    diagonal.load_state_dict(cross.state_dict(), strict=True)
    assert recover_serpent(cross.state_dict())["order"] == "diagonal"
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert (diagonal.eval()(x) - cross(x)).abs().max() > 1e-4


def test_what_is_not_serpent_is_refused():
    unet = serpentir.create_model("unet-t").state_dict()
    assert not detect(unet)
    with pytest.raises(NotSerpentError, match="not a Serpent state dict"):
        recover_serpent(unet)
    shapes = _shapes_only(BUNDLED["denoise"])
    lopsided = {k: v for k, v in shapes.items() if not k.startswith("up.0.blocks.0.")}  # decoder no longer mirrors
    with pytest.raises(NotSerpentError, match="do not mirror"):
        recover_serpent(lopsided)
    wide = dict(shapes, **{"down.0.blocks.0.ssm.A_log": (4 * 32, 9)})  # one block with another d_state
    with pytest.raises(NotSerpentError):
        recover_serpent(wide)


# ---- without spandrel: what a descriptor states and does ------------------------------------------------

@pytest.mark.parametrize("stem", sorted(BUNDLED))
def test_bundled_files_are_described_as_their_metadata_says(stem):
    state, meta = load_file(str(BUNDLED[stem])), _metadata(BUNDLED[stem])
    d = describe(state, known_checkpoints())
    assert (d.purpose, d.scale, d.task) == (*_expected_purpose(meta), meta["task"]["name"])
    assert (d.input_channels, d.output_channels) == (3, 3)  # an inpainting mask is passed separately
    bare = describe(select_weights(state))  # keys and shapes only: no task, so an SR model is same-size
    assert (bare.purpose, bare.scale) == (("Inpainting", 1) if stem == "inpaint" else ("Restoration", 1))
    assert bare.task is None and d.tiling == "DISCOURAGED"


@pytest.mark.parametrize("stem", sorted(BUNDLED))
def test_descriptor_calls_give_serpentir_restores_output(stem):
    """The calls a spandrel descriptor makes (model rebuilt from shapes) against serpentir.restore."""
    state = load_file(str(BUNDLED[stem]))
    d = describe(state, known_checkpoints())
    model = build(d)
    model.load_state_dict(select_weights(state), strict=True)
    ref, args = _restore_reference(_metadata(BUNDLED[stem])["task"]["name"])
    with torch.no_grad():
        if d.purpose == "Inpainting":
            out = restore_masked(model, *args, fill=d.mask_fill)
        elif d.purpose == "SR":
            out = upscale_then_restore(model, *args, scale=d.scale)
        else:
            out = model(*args)
    assert torch.equal(out.clamp(0, 1)[0], ref)


def test_a_training_checkpoint_is_its_ema_weights_and_known_only_when_listed(sr_checkpoint):
    state = load_file(str(sr_checkpoint))
    picked = select_weights(state)
    assert picked.keys() == {k[4:] for k in state if k.startswith("ema.")}
    assert all(torch.equal(v, state["ema." + k]) for k, v in picked.items())
    assert any(not torch.equal(v, state["model." + k]) for k, v in picked.items())
    unlisted = describe(state, known_checkpoints())
    assert (unlisted.purpose, unlisted.scale) == ("Restoration", 1) and "scan order assumed diagonal" in unlisted.tags
    listed = describe(state, known_checkpoints([sr_checkpoint]))
    assert (listed.purpose, listed.scale, listed.task) == ("SR", 4, "sr4")
    assert (listed.overrides["order"], listed.overrides["expand"]) == ("cross", 2.3)  # from the metadata
    clean = _photo(64, 76)[0]
    ref = serpentir.restore(down_up(clean, 4), model=sr_checkpoint)
    outputs = []
    for d in (listed, unlisted):
        model = build(d)
        model.load_state_dict(picked, strict=True)
        with torch.no_grad():
            outputs.append(upscale_then_restore(model, downscale(clean, 4)[None], d.scale if d.scale > 1 else 4))
    assert torch.equal(outputs[0].clamp(0, 1)[0], ref)
    assert not torch.equal(outputs[1].clamp(0, 1)[0], ref)  # the assumed diagonal order is another network


def test_precision_flags_match_the_measurement():
    """supports_bfloat16: close to float32 on every bundled model; supports_half: gaussian_deblur overflows."""
    assert (SUPPORTS_HALF, SUPPORTS_BFLOAT16) == (False, True)
    x = _photo(48, 64)
    for stem, path in BUNDLED.items():
        model = serpentir.load_model(path)
        args = torch.cat([x, _hole(48, 64)], 1) if stem == "inpaint" else x
        with torch.no_grad():
            ref = model(args).clamp(0, 1)
            assert (model.to(torch.bfloat16)(args.bfloat16()).float().clamp(0, 1) - ref).abs().max() < 0.05, stem
    with torch.no_grad():
        half = serpentir.load_model(BUNDLED["gaussian_deblur"]).half()(x.half())
    assert not torch.isfinite(half).all()


def test_install_without_spandrel_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'serpentir\[spandrel\]'"):
        install()


# ---- through spandrel (skipped where it cannot be imported) ---------------------------------------------

@pytest.fixture(scope="module")
def spandrel():
    try:
        import spandrel
    except Exception as e:  # torchvision built for another torch fails with RuntimeError, not ImportError
        pytest.skip(f"spandrel cannot be imported here ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                    "scripts/spandrel_venv.sh runs these tests in a venv where it can")
    install(ignore_duplicates=True)
    return spandrel


@pytest.mark.parametrize("stem", sorted(BUNDLED))
def test_spandrel_loads_every_bundled_file_as_serpentir_restores_it(spandrel, stem):
    meta = _metadata(BUNDLED[stem])
    model = spandrel.ModelLoader().load_from_file(BUNDLED[stem])
    masked = meta["task"]["name"] == "inpaint"
    assert isinstance(model, spandrel.MaskedImageModelDescriptor if masked else spandrel.ImageModelDescriptor)
    assert model.architecture.id == ARCH_ID and (model.purpose, model.scale) == _expected_purpose(meta)
    assert (model.input_channels, model.output_channels) == (3, 3) and model.size_requirements.none
    assert model.tiling == spandrel.ModelTiling.DISCOURAGED
    assert (model.supports_half, model.supports_bfloat16) == (False, True)
    ref, args = _restore_reference(meta["task"]["name"])
    out = model(*args)
    assert out.shape[-2:] == ref.shape[-2:] and torch.equal(out[0], ref)
    with pytest.raises(spandrel.UnsupportedDtypeError):
        model.half()
    low = model.bfloat16()(*(a.bfloat16() for a in args))  # the call's own steps (upscale, fill) in bfloat16 too
    assert low.dtype == torch.bfloat16 and (low[0].float() - ref).abs().max() < 0.05


def test_spandrel_loads_a_training_checkpoint(spandrel, sr_checkpoint):
    plain = spandrel.ModelLoader().load_from_file(sr_checkpoint)  # not listed: shapes only, a same-size model
    assert (plain.purpose, plain.scale) == ("Restoration", 1) and "scan order assumed diagonal" in plain.tags
    registry = spandrel.ArchRegistry()
    install(checkpoints=[sr_checkpoint], registry=registry)
    listed = spandrel.ModelLoader(registry=registry).load_from_file(sr_checkpoint)
    assert (listed.purpose, listed.scale) == ("SR", 4)
    ref, args = _restore_reference("sr4", model=sr_checkpoint)
    assert torch.equal(listed(*args)[0], ref)


def test_spandrel_loads_a_bare_state_dict_and_bfloat16(spandrel, tmp_path):
    """A .pth of model.state_dict() (keys and tensors only) loads; bfloat16 runs close to float32."""
    net = serpentir.load_model("denoise")
    torch.save(net.state_dict(), tmp_path / "bare.pth")
    model = spandrel.ModelLoader().load_from_file(tmp_path / "bare.pth")
    x = _photo(45, 61)
    ref = model(x)
    with torch.no_grad():
        assert torch.equal(ref, net(x).clamp(0, 1))
    assert (model.bfloat16()(x.bfloat16()).float() - ref).abs().max() < 0.05


def test_install_twice_and_no_false_detection(spandrel):
    with pytest.raises(spandrel.DuplicateArchitectureError):
        install()
    assert install(ignore_duplicates=True) == []
    from spandrel.architectures.ESRGAN import ESRGAN

    assert not detect(ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1).state_dict())
