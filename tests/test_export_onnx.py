"""`serpentir export --onnx`: one export of a tiny Serpent checkpoint (the graph of any Serpent,
small enough to export in seconds), then onnxruntime against PyTorch at sizes other than the traced
one, and every user mistake as one line. benchmarks/bench_onnx.py checks the bundled models."""

import contextlib
import importlib.util
import io

import pytest
import torch

from real_photos import photo
from serpentir import cli
from serpentir.checkpoint import build_model, build_task, load_checkpoint, save_checkpoint
from serpentir.infer import restore_tensor

TASK = "denoise"  # the task of the tiny checkpoint and of the bundled model the error tests name
TINY = {"embed_dim": 8, "depths": [1], "bottleneck_depth": 1, "d_state": 4}  # two scales, N=4


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, needle):
    assert code == 2
    assert err.startswith("serpentir: error:") and err.count("\n") == 1, err
    assert needle in err, err


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A randomly initialised small Serpent, saved as a checkpoint: what a user's --weights would be."""
    torch.manual_seed(0)
    model = build_model("serpent-t", TINY, channels=3)
    torch.nn.init.normal_(model.head.proj.weight, std=0.05)  # a head that changes the image, as trained ones do
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    return save_checkpoint(path, model=model, task=build_task(TASK), step=0)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_weights):
    """The tiny checkpoint exported once through the command line: (path, its report line)."""
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["export", "--onnx", str(path), "--weights", str(tiny_weights)])
    assert code == 0
    return path, out.getvalue()


def onnx_restore(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"image": x.numpy()})[0])


@pytest.mark.parametrize("name, size, top, left", [
    ("chelsea", (37, 53), 40, 150), ("coffee", (64, 48), 100, 200), ("astronaut", (300, 200), 10, 100),
    ("coffee", (256, 256), 100, 100)])
def test_onnx_matches_pytorch_at_odd_sizes(exported, tiny_weights, name, size, top, left):
    """A real photo, noised by the task, restored by onnxruntime and by PyTorch."""
    path, _ = exported
    model, task, _ = load_checkpoint(tiny_weights)
    x = task(photo(name, size, top, left), seed=0)[None]
    want = restore_tensor(model, x)
    got = onnx_restore(path, x)
    assert got.shape == want.shape == (1, 3, *size)
    assert (got - want).abs().max().item() < 1e-3
    assert (want - x).abs().mean() > 0.01  # the model changed the image: the parity is not trivial


def test_onnx_takes_a_batch(exported, tiny_weights):
    path, _ = exported
    model, task, _ = load_checkpoint(tiny_weights)
    x = torch.stack([task(photo("astronaut", (40, 36), 60, 200), seed=i) for i in range(2)])
    torch.testing.assert_close(onnx_restore(path, x), restore_tensor(model, x), rtol=0, atol=1e-3)


def test_export_reports_its_check_and_labels_the_file(exported, tiny_weights):
    import onnx

    path, report = exported
    assert f"wrote {path}" in report and "max |onnxruntime - PyTorch| = " in report
    graph = onnx.load(str(path))
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["serpentir.task"] == TASK and meta["serpentir.weights"] == tiny_weights.name
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))  # N, H, W symbolic
    assert any(node.op_type == "Scan" for node in graph.graph.node)  # loops, not unrolled for a size


def test_each_scan_layer_is_three_hand_written_loops(exported):
    """The scan's loops are written directly (serpentir.ops.scan_export_loops), not traced: per SSM
    layer, the chunk end states, the carry across the chunks and the read-out, each one Scan node whose
    body is the recurrence alone (an unrolled carry made hundreds of nodes per layer)."""
    import onnx

    graph = onnx.load(str(exported[0])).graph
    bodies = [tuple(b.op_type for b in a.g.node) for n in graph.node if n.op_type == "Scan"
              for a in n.attribute if a.name == "body"]
    step = ("Mul", "Exp", "Mul", "Mul", "Add")
    layers = bodies.count(step)
    assert layers == 3  # the tiny checkpoint: one block at each of two scales and the bottleneck
    assert bodies.count(("Mul", "Add", "Identity")) == bodies.count(step + ("Mul", "ReduceSum")) == layers
    assert len(bodies) == 3 * layers


def test_existing_file_is_kept(exported, capsys):
    path, _ = exported
    before = path.read_bytes()
    code, _, err = run(["export", "--onnx", path, "--task", TASK], capsys)
    assert_one_line_error(code, err, "already exists; pass --overwrite")
    assert path.read_bytes() == before


@pytest.mark.parametrize("args, needle", [
    (["--task", "no_such_task"], "no bundled weights for task 'no_such_task'"),
    (["--weights", "missing.safetensors"], "missing.safetensors"),
    (["--task", "jpeg", "--weights", "x.safetensors"], "not allowed with argument"),
])
def test_user_errors_are_one_line(tmp_path, capsys, args, needle):
    target = tmp_path / "m.onnx"
    try:
        code, _, err = run(["export", "--onnx", target, *args], capsys)
    except SystemExit as e:  # argparse
        code, err = e.code, capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not target.exists()


def test_without_the_onnx_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    code, _, err = run(["export", "--onnx", tmp_path / "m.onnx", "--task", TASK], capsys)
    assert_one_line_error(code, err, "pip install 'serpentir[onnx]'")
    assert not (tmp_path / "m.onnx").exists()


def test_a_graph_that_fails_the_check_is_not_written(tmp_path, capsys, monkeypatch):
    """The parity check runs before the rename: an existing file survives a failed --overwrite."""
    import serpentir.export.onnx as export_onnx

    monkeypatch.setattr(export_onnx, "require_onnx", lambda: None)
    monkeypatch.setattr(export_onnx, "export_model", lambda model, path, *a, **k: path.write_bytes(b"graph"))
    monkeypatch.setattr(export_onnx, "max_onnx_difference", lambda *a: 0.5)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"earlier")
    code, _, err = run(["export", "--onnx", target, "--task", TASK, "--overwrite"], capsys)
    assert_one_line_error(code, err, "differs from PyTorch by 5.00e-01")
    assert target.read_bytes() == b"earlier" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
