"""The exportable scan backend against the sequential reference, in PyTorch and as an ONNX graph."""

import pytest
import torch
from test_selective_scan import CASES, assert_matches_ref, make_inputs

from serpentir.ops import selective_scan, selective_scan_ref
from serpentir.ops.scan_export import selective_scan_export


@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_export_backend_matches_reference_values_and_gradients(case, softplus):
    spec = dict(CASES[case])
    chunk = spec.pop("chunk", None)
    inputs = make_inputs(**spec)
    kw = {"chunk_size": chunk} if chunk else {}
    assert_matches_ref(inputs, selective_scan_export, delta_softplus=softplus, **kw)


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


class _Scan(torch.nn.Module):
    def forward(self, u, delta, A, B, C, D, z, delta_bias):
        return selective_scan_export(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True,
                                     return_last_state=True)


def test_onnx_graph_takes_any_length_and_matches_reference(tmp_path):
    """One export at L=37; onnxruntime then runs lengths below, at and above the chunk, strong decays too."""
    ort = pytest.importorskip("onnxruntime")
    names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
    example = make_inputs(batch=1, dim=6, L=37, N=4, groups=2, dtype=torch.float32)
    L = torch.export.Dim.DYNAMIC
    dynamic = {"u": {2: L}, "delta": {2: L}, "B": {3: L}, "C": {3: L}, "z": {2: L}}
    path = tmp_path / "scan.onnx"
    torch.onnx.export(_Scan().eval(), tuple(example[n] for n in names), str(path), dynamo=True, input_names=list(names),
                      dynamic_shapes={n: dynamic.get(n) for n in names}, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for length, scale, offset in ((5, 1.0, 0.0), (16, 1.0, 0.0), (37, 1.0, 0.0), (203, 1.0, 0.0), (90, 10.0, 20.0)):
        inputs = make_inputs(batch=1, dim=6, L=length, N=4, groups=2, delta_scale=scale, delta_offset=offset,
                             dtype=torch.float32, seed=length)
        y, last = session.run(None, {n: inputs[n].numpy() for n in names})
        y_r, last_r = selective_scan_ref(**inputs, delta_softplus=True, return_last_state=True)
        torch.testing.assert_close(torch.from_numpy(y), y_r, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(torch.from_numpy(last), last_r, rtol=1e-4, atol=1e-4)
