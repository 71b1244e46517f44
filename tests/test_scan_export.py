"""The exportable scans (1-D backend and the 2-D band scan that `serpentir export --onnx` traces)
against the sequential reference: values and gradients in PyTorch, and the 1-D backend as an ONNX graph
in onnxruntime. The whole model's ONNX graph is checked against PyTorch in test_export_onnx.py."""

import pytest
import torch
from test_scan_2d import GRIDS, assert_matches_reference
from test_scan_2d import make_inputs as make_inputs_2d
from test_selective_scan import CASES, assert_matches_ref, make_inputs

from serpentir.ops import scan_walks, selective_scan, selective_scan_2d, selective_scan_ref
from serpentir.ops.scan_2d_export import scan_2d_export, softplus
from serpentir.ops.scan_export import selective_scan_export
from serpentir.ops.scan_export_chunked import MAX_CHUNKS, chunk_count


@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_export_backend_matches_reference_values_and_gradients(case, softplus):
    spec = dict(CASES[case])
    spec.pop("chunk", None)
    inputs = make_inputs(**spec)
    for chunks in (None, 1, 3, 8):  # None: the layer's own count (64 here: most chunks are padding)
        assert_matches_ref(inputs, selective_scan_export, delta_softplus=softplus, chunks=chunks)


def test_registered_as_the_export_backend():
    inputs = make_inputs(batch=2, dim=6, L=41, N=4, groups=3)
    torch.testing.assert_close(selective_scan(**inputs, delta_softplus=True, backend="export"),
                               selective_scan_ref(**inputs, delta_softplus=True), rtol=1e-9, atol=1e-9)


def test_without_D_z_and_bias():
    inputs = make_inputs(batch=1, dim=4, L=23, N=3)
    for key in ("D", "z", "delta_bias"):
        inputs.pop(key)
    torch.testing.assert_close(selective_scan_export(**inputs), selective_scan_ref(**inputs), rtol=1e-9, atol=1e-9)


def test_strong_decays_stay_finite_in_float32():
    inputs = make_inputs(batch=1, dim=8, L=500, N=16, delta_scale=5.0, delta_offset=30.0, dtype=torch.float32)
    y = selective_scan_export(**inputs, delta_softplus=True)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, selective_scan_ref(**inputs, delta_softplus=True), rtol=1e-4, atol=1e-4)


def test_huge_delta_underflows_to_zero_decay():
    inputs = make_inputs(batch=1, dim=8, L=30, N=16, delta_scale=0.0, delta_offset=2000.0, dtype=torch.float32)
    torch.testing.assert_close(selective_scan_export(**inputs), selective_scan_ref(**inputs), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("order", ["diagonal", "cross"])
@pytest.mark.parametrize("directions", [1, 2, 4])
@pytest.mark.parametrize("chunks", [1, 2, 4])
def test_band_scan_matches_the_2d_definition(order, directions, chunks):
    """Bands of lines of every grid shape (a band longer than the map, one line, padded lines), float64."""
    walks = scan_walks(directions, order)
    for grid in GRIDS + [(7, 3)]:
        inputs = make_inputs_2d(2, *grid, d=5, K=directions, N=3)
        band = lambda **kw: scan_2d_export(**kw, walks=walks, delta_softplus=True, chunks=chunks)
        assert_matches_reference(inputs, directions, order, band)


def test_export_backend_of_the_2d_op_is_the_band_scan():
    walks = scan_walks(4, "diagonal")
    inputs = make_inputs_2d(1, 9, 6, d=4, K=4, N=3, dtype=torch.float32)
    torch.testing.assert_close(selective_scan_2d(**inputs, walks=walks, backend="export"),
                               selective_scan_2d(**inputs, walks=walks, backend="ref"), rtol=1e-5, atol=1e-5)


def test_band_scan_with_strong_decays_in_float32():
    """|delta * A| up to ~300 per step: decays underflow to 0, nothing overflows."""
    walks = scan_walks(4, "diagonal")
    inputs = make_inputs_2d(1, 12, 10, d=4, K=4, N=8, decay_scale=100.0, dtype=torch.float32)
    y = scan_2d_export(**inputs, walks=walks, delta_softplus=True, chunks=4)
    assert torch.isfinite(y).all()
    want = selective_scan_2d(**inputs, walks=walks, backend="ref")
    torch.testing.assert_close(y, want, rtol=1e-4, atol=1e-4)


def test_softplus_formula_matches_torch():
    x = torch.linspace(-100, 100, 20001, dtype=torch.float64)
    # torch returns x itself above 20, 2e-9 from the true value (which this formula keeps)
    torch.testing.assert_close(softplus(x), torch.nn.functional.softplus(x), rtol=0, atol=1e-8)


def test_chunk_count_keeps_one_step_of_every_chunk_small():
    assert chunk_count(128, 8) == MAX_CHUNKS  # 64 chunks of 1024 state elements
    assert chunk_count(1024, 8) == 8 and chunk_count(4096, 16) == 1
    assert all(m & (m - 1) == 0 for m in (chunk_count(d, 16) for d in range(1, 5000, 37)))


def test_the_1d_export_scan_as_an_onnx_graph_takes_any_length(tmp_path):
    """The 1-D export backend (groups of B and C, the read-out summed over the state axis) written to
    ONNX with its loops as hand-built Scan nodes: onnxruntime against the float64 reference at a length
    other than the traced one, and with a last state."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from serpentir.ops.scan_export_loops import onnx_translations

    class Scan(torch.nn.Module):
        def forward(self, u, delta, A, B, C):
            y, last = selective_scan_export(u, delta, A, B, C, delta_softplus=True, return_last_state=True, chunks=4)
            return y, last

    traced = make_inputs(batch=1, dim=6, L=37, N=4, groups=2)
    names = ("u", "delta", "A", "B", "C")
    args = tuple(traced[k].float() for k in names)
    length = torch.export.Dim.DYNAMIC
    program = torch.export.export(Scan(), args, dynamic_shapes=({2: length}, {2: length}, None, {3: length},
                                                                  {3: length}), strict=False)
    path = tmp_path / "scan1d.onnx"
    torch.onnx.export(program, dynamo=True, custom_translation_table=onnx_translations(),
                      input_names=list(names)).save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other = make_inputs(batch=1, dim=6, L=53, N=4, groups=2)
    y, last = session.run(None, {k: other[k].float().numpy() for k in names})
    want_y, want_last = selective_scan_ref(*(other[k] for k in names), delta_softplus=True, return_last_state=True)
    assert y.shape == tuple(want_y.shape)
    torch.testing.assert_close(torch.from_numpy(y).double(), want_y, rtol=0, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(last).double(), want_last, rtol=0, atol=1e-4)


def test_the_scan_floor_benchmark_times_correct_graphs():
    """benchmarks/onnx_scan_floor.py's two graphs (the export form and the lower bound) compute the band
    recurrence y_t = sum_n C * h_t, h_t = exp(d*A) * h + du * B, carried across chunks: a bound is only
    a bound if it computes the same thing."""
    import importlib.util
    import pathlib

    import numpy as np

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "onnx_scan_floor.py"
    spec = importlib.util.spec_from_file_location("onnx_scan_floor", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    T, M, N, K, d = 6, 3, 4, 2, 5
    A, feeds = bench.random_inputs(T, M, N, K, d, dt_max=0.5)
    dt = feeds["dt"]
    h, want = np.zeros((1, N, K, d)), np.zeros((T, M, 1, K, d))
    for m in range(M):  # chunk m follows chunk m - 1: one sequence of M * T steps
        for t in range(T):
            h = np.exp(dt[t, m] * A) * h + feeds["du"][t, m] * feeds["B"][t, m]
            want[t, m] = (h * feeds["C"][t, m]).sum(1)
    for graph in bench._graphs(T, M, N, K, d, A):
        (y,) = ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(None, feeds)
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-4)
