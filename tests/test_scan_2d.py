"""The 2-D multi-direction scan (fused CPU kernel and the flip/transpose sequence path) against its
definition: unroll the map by explicit permutations -> the sequential reference scan -> merge.

This module builds and enables the compiled kernel for itself (conftest's compiled_kernel fixture).
"""

import pytest
import torch

from real_photos import photo
from serpentir import load_model
from serpentir.layers import merge, pieces, scan_permutations, unroll
from serpentir.layers.multi_direction_ssm import MultiDirectionSSM
from serpentir.layers.vss_block import VSSBlock
from serpentir.ops import scan_walks, selective_scan, selective_scan_2d, selective_scan_ref
from serpentir.ops.scan_2d_cpu import scan_2d_cpu

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("compiled_kernel")


def make_inputs(batch, H, W, d, K, N, R=2, decay_scale=1.0, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    return dict(
        u=rand(batch, H, W, d), dt=rand(batch, H, W, K, R), dt_weight=rand(K * d, R) * 0.5,
        A=-(torch.rand(K * d, N, generator=g, dtype=dtype) * 2 + 0.1) * decay_scale,
        B=rand(batch, H, W, K, N), C=rand(batch, H, W, K, N), D=rand(K * d), delta_bias=rand(K * d) * 0.1,
    )


def reference_2d(u, dt, dt_weight, A, B, C, D, delta_bias, directions, order):
    """The definition: gather every direction's sequence, scan it with the plain loop, scatter back, sum."""
    b, H, W, d = u.shape
    K, R, N, L = directions, dt.shape[-1], A.shape[1], H * W
    delta = torch.einsum("bhwkr,kdr->bhwkd", dt, dt_weight.view(K, d, R))

    def per_direction(x):  # (b, H, W, K, c) -> (b, K, c, L), direction k in its own order
        seqs = [unroll(x[..., k, :], directions, order)[:, k] for k in range(K)]
        return torch.stack(seqs, 1).transpose(2, 3)

    u_seq = unroll(u, directions, order).transpose(2, 3).reshape(b, K * d, L)
    y = selective_scan_ref(u_seq, per_direction(delta).reshape(b, K * d, L), A, per_direction(B),
                           per_direction(C), D=D, delta_bias=delta_bias, delta_softplus=True)
    return merge(y.view(b, K, d, L).transpose(2, 3), H, W, order)


def outputs_and_grads(fn, inputs, seed=1):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    y = fn(**leaves)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    return y, dict(zip(leaves, torch.autograd.grad((y * gy).sum(), list(leaves.values()))))


def assert_matches_reference(inputs, directions, order, fn, rtol=1e-9, atol=1e-9):
    y_r, g_r = outputs_and_grads(lambda **kw: reference_2d(**kw, directions=directions, order=order), inputs)
    y_f, g_f = outputs_and_grads(fn, inputs)
    torch.testing.assert_close(y_f, y_r, rtol=rtol, atol=atol)
    for name in g_r:
        torch.testing.assert_close(g_f[name], g_r[name], rtol=rtol, atol=atol, msg=lambda m: f"d{name}: {m}")


GRIDS = [(1, 1), (1, 9), (9, 1), (3, 5), (6, 4)]


@pytest.mark.parametrize("order", ["diagonal", "cross"])
@pytest.mark.parametrize("directions", [1, 2, 4])
@pytest.mark.parametrize("grid", GRIDS)
def test_fused_kernel_matches_the_definition(order, directions, grid):
    """Values and every input gradient; chunk 4 puts chunk boundaries inside the walks."""
    inputs = make_inputs(2, *grid, d=11, K=directions, N=3)  # 11 channels: a full and a partial block of 8
    walks = scan_walks(directions, order)
    fused = lambda **kw: scan_2d_cpu(**kw, codes=[w.code for w in walks], delta_softplus=True, chunk_size=4)[0]
    assert_matches_reference(inputs, directions, order, fused)


@pytest.mark.parametrize("backend", ["chunked", "ref"])
@pytest.mark.parametrize("order", ["diagonal", "cross"])
@pytest.mark.parametrize("directions", [1, 2, 4])
def test_sequence_path_matches_the_definition(backend, order, directions):
    """Any 1-D backend through flips and transposes (the path for GPUs and ONNX)."""
    inputs = make_inputs(2, 3, 5, d=4, K=directions, N=3)
    walks = scan_walks(directions, order)
    seq = lambda **kw: selective_scan_2d(**kw, walks=walks, backend=backend)
    assert_matches_reference(inputs, directions, order, seq)


@pytest.mark.parametrize("N", [8, 16])
def test_compiled_state_sizes_and_strong_decays(N):
    """N = 8 and 16 take unrolled code paths; |delta * A| reaches ~70 per step (trained channels do)."""
    inputs = make_inputs(1, 4, 7, d=16, K=4, N=N, decay_scale=15.0)
    inputs["delta_bias"] = inputs["delta_bias"] + 2.0
    walks = scan_walks(4)
    assert (torch.nn.functional.softplus(inputs["delta_bias"] + 3).max() * inputs["A"].abs().max()) > 60
    fused = lambda **kw: selective_scan_2d(**kw, walks=walks, backend="cpu")
    assert_matches_reference(inputs, 4, "diagonal", fused)


def test_float32_matches_float64_definition():
    inputs = make_inputs(2, 8, 8, d=24, K=4, N=16)
    walks = scan_walks(4)
    y32 = selective_scan_2d(**{k: v.float() for k, v in inputs.items()}, walks=walks, backend="cpu")
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), reference_2d(**inputs, directions=4, order="diagonal"), rtol=1e-4,
                               atol=1e-4)


def test_reads_strided_views_in_place():
    """The layer passes views of one projection buffer: strides other than contiguous must be honoured."""
    base = make_inputs(1, 5, 6, d=9, K=2, N=4, R=1)
    proj = torch.randn(1, 5, 6, 2, 1 + 2 * 4, dtype=F64)
    inputs = dict(base, u=torch.randn(1, 9, 5, 6, dtype=F64).permute(0, 2, 3, 1), dt=proj[..., :1],
                  B=proj[..., 1:5], C=proj[..., 5:])
    assert not inputs["u"].is_contiguous() and not inputs["B"].is_contiguous()
    walks = scan_walks(2)
    fused = lambda **kw: selective_scan_2d(**kw, walks=walks, backend="cpu")
    assert_matches_reference(inputs, 2, "diagonal", fused)


def test_gradcheck_float64():
    inputs = make_inputs(1, 2, 3, d=3, K=4, N=2, R=1)
    leaves = [v.requires_grad_() for v in inputs.values()]
    walks = scan_walks(4, "cross")
    fn = lambda *args: scan_2d_cpu(*args, codes=[w.code for w in walks], delta_softplus=True, chunk_size=2)[0]
    assert torch.autograd.gradcheck(fn, leaves)


@pytest.mark.parametrize("reverse", [False, True])
def test_state_carried_across_row_bands_is_exact(reverse):
    """Scanning rows [0, 3) then [3, 7) (or bottom band first for the reversed walks), the second band
    starting from the first band's last state, gives the whole-map result."""
    inputs = make_inputs(2, 7, 5, d=10, K=2, N=4)
    walks = [w for w in scan_walks(4) if w.flip_rows == reverse]
    whole = selective_scan_2d(**inputs, walks=walks, backend="cpu")
    band = lambda kw, a, b: {k: (v[:, a:b] if v.dim() >= 4 else v) for k, v in kw.items()}
    first, second = ((3, 7), (0, 3)) if reverse else ((0, 3), (3, 7))
    y1, state = selective_scan_2d(**band(inputs, *first), walks=walks, return_last_state=True, backend="cpu")
    y2, _ = selective_scan_2d(**band(inputs, *second), walks=walks, h0=state, return_last_state=True, backend="cpu")
    pieced = torch.cat([y2, y1] if reverse else [y1, y2], dim=1)
    torch.testing.assert_close(pieced, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("order", ["diagonal", "cross"])
def test_layers_in_pieces_equal_the_whole_map(order):
    """Under no_grad a map larger than PIECE_TOKENS goes through the SSM and the VSS block in bands."""
    block = VSSBlock(8, d_state=4, order=order).double()
    with torch.no_grad():  # a trained-looking layer: parameters away from their initial values
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    x = torch.randn(2, 9, 11, 8, dtype=F64)
    with torch.no_grad():
        whole_ssm, whole_block = block.ssm(x.repeat(1, 1, 1, 2)), block(x)
        assert not pieces.use_pieces(2, 9, 11)
        with pieces.piece_budget(40):  # bands of one or two lines
            assert pieces.use_pieces(2, 9, 11)
            torch.testing.assert_close(block.ssm(x.repeat(1, 1, 1, 2)), whole_ssm, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(block(x), whole_block, rtol=1e-10, atol=1e-10)
        assert pieces.piece_tokens() == pieces.PIECE_TOKENS


def test_errors_name_the_bad_argument():
    inputs = make_inputs(1, 3, 4, d=4, K=2, N=3)
    walks = scan_walks(2)
    with pytest.raises(ValueError, match="B must be"):
        selective_scan_2d(**dict(inputs, B=inputs["B"][..., :2]), walks=walks)
    with pytest.raises(ValueError, match="dt_weight"):
        selective_scan_2d(**dict(inputs, dt_weight=inputs["dt_weight"][:4]), walks=walks)
    with pytest.raises(ValueError, match="fused 'cpu' backend"):
        selective_scan_2d(**inputs, walks=walks, return_last_state=True, backend="chunked")


def unrolled_ssm_forward(ssm: MultiDirectionSSM, x: torch.Tensor, backend: str = "ref") -> torch.Tensor:
    """The pre-fusion computation of the layer: unroll the map, per-direction projections of the
    unrolled tokens, one 1-D scan over all directions, merge."""
    K, R, N, (b, H, W, d) = ssm.directions, ssm.dt_rank, ssm.d_state, x.shape
    seqs = unroll(x, K, ssm.order)  # (b, K, L, d)
    proj = torch.einsum("bkld,kcd->bklc", seqs, ssm.x_proj_weight)
    delta = torch.einsum("bklr,kdr->bkdl", proj[..., :R], ssm.dt_proj_weight).reshape(b, K * d, H * W)
    y = selective_scan(seqs.transpose(2, 3).reshape(b, K * d, H * W), delta, -torch.exp(ssm.A_log.to(x.dtype)),
                       proj[..., R:R + N].transpose(2, 3), proj[..., R + N:].transpose(2, 3), D=ssm.D.to(x.dtype),
                       delta_bias=ssm.dt_proj_bias.reshape(-1).to(x.dtype), delta_softplus=True, backend=backend)
    return merge(y.view(b, K, d, H * W).transpose(2, 3), H, W, ssm.order)


def test_ssm_layer_equals_unroll_scan_merge():
    ssm = MultiDirectionSSM(12, d_state=4, directions=4).double()
    with torch.no_grad():
        for p in ssm.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2, 5, 6, 12, dtype=F64)
    torch.testing.assert_close(ssm(x), unrolled_ssm_forward(ssm, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("task", ["gaussian_deblur", "denoise"])
def test_bundled_models_equal_the_unrolled_computation(monkeypatch, task):
    """Whole bundled models on a real photo: the fused layer against the computation it replaced."""
    model = load_model(task)
    x = photo("astronaut", size=(48, 72), top=120, left=180)[None]
    with torch.no_grad():
        fused = model(x)
        monkeypatch.setattr(MultiDirectionSSM, "forward", lambda self, t: unrolled_ssm_forward(self, t, "chunked"))
        unrolled = model(x)
    assert (fused - x).abs().max() > 1e-3  # the model does change the image
    torch.testing.assert_close(fused, unrolled, rtol=0, atol=1e-4)


def test_torch_compile_traces_around_the_fused_kernel_in_one_graph():
    """torch.compile used to fail inside the kernel ("Cannot access data pointer"); the kernel is now an
    opaque op with declared output shapes: one graph (fullgraph), same values and gradients."""
    inputs = make_inputs(2, 5, 4, d=3, K=4, N=4, R=2)
    walks = scan_walks(4, "diagonal")

    def fn(**kw):
        return selective_scan_2d(**kw, walks=walks, delta_softplus=True, backend="auto")

    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    assert_matches_reference(inputs, 4, "diagonal", compiled)
