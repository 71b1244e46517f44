"""The two loops of the exportable scan as custom ops that the ONNX exporter writes as Scan nodes directly.

Traced as torch's `scan` higher-order op, a loop has its body traced again with symbolic sizes at each
stage of the export (torch.export, the decompositions, onnxscript's optimizer): most of an export's
minutes. As custom ops the loops are opaque to the tracer (a fake kernel gives the output's shape),
and `onnx_translations()` writes each as one ONNX Scan whose body is the recurrence's few nodes, built
by hand. In eager mode the same recurrence runs as a Python loop (differentiable, any device).

Both loops walk the first axis of d, du, B (and C) from the state h:
    h <- exp(d * A) * h + du * B
`end_state` returns the last h; `read_out` stacks y_t = sum(h_t * C_t, axis) over the steps. The
operands broadcast against h (shapes are the callers': scan_export_chunked, scan_2d_export).
`carry_over` is the short loop across the chunks (h <- decay_m * h + end_m from zero, returning the
state entering each chunk): unrolled, its few ops per chunk made hundreds of nodes per layer, and the
exporter's optimizer spends its time matching patterns against every node.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor


def _advance(h: Tensor, d: Tensor, du: Tensor, B: Tensor, A: Tensor) -> Tensor:
    return torch.exp(d * A) * h + du * B


def _end_state_eager(h: Tensor, d: Tensor, du: Tensor, B: Tensor, A: Tensor) -> Tensor:
    for t in range(d.shape[0]):
        h = _advance(h, d[t], du[t], B[t], A)
    return h


def _read_out_eager(h: Tensor, d: Tensor, du: Tensor, B: Tensor, C: Tensor, A: Tensor, axis: int) -> Tensor:
    ys = []
    for t in range(d.shape[0]):
        h = _advance(h, d[t], du[t], B[t], A)
        ys.append((h * C[t]).sum(axis))
    return torch.stack(ys)


def _carry_over_eager(decay: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    h = torch.zeros_like(end[0])
    entries = []
    for decay_m, end_m in zip(decay.unbind(0), end.unbind(0)):
        entries.append(h)
        h = decay_m * h + end_m
    return torch.stack(entries), h


def carry_over(decay: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    """(state entering each chunk, state after the last) from each chunk's decay and end state from zero."""
    if torch.compiler.is_compiling():
        return scan_ops()[2](decay, end)
    return _carry_over_eager(decay, end)


def end_state(h: Tensor, d: Tensor, du: Tensor, B: Tensor, A: Tensor) -> Tensor:
    """The state after every step of the first axis (a custom op while exporting, else a Python loop)."""
    if torch.compiler.is_compiling():
        return scan_ops()[0](h, d, du, B, A)
    return _end_state_eager(h, d, du, B, A)


def read_out(h: Tensor, d: Tensor, du: Tensor, B: Tensor, C: Tensor, A: Tensor, axis: int) -> Tensor:
    """y_t = sum(h_t * C_t, axis) at every step, stacked on a new first axis."""
    if torch.compiler.is_compiling():
        return scan_ops()[1](h, d, du, B, C, A, axis)
    return _read_out_eager(h, d, du, B, C, A, axis)


@functools.cache
def scan_ops() -> tuple[Callable[..., Tensor], Callable[..., Tensor], Callable[..., tuple[Tensor, Tensor]]]:
    """serpentir::scan_end, scan_read and scan_carry, registered with torch on first use (not at import)."""

    @torch.library.custom_op("serpentir::scan_end", mutates_args=())
    def scan_end(h: Tensor, d: Tensor, du: Tensor, B: Tensor, A: Tensor) -> Tensor:
        return _end_state_eager(h, d, du, B, A).clone()  # a fresh tensor even for zero steps

    @scan_end.register_fake
    def _(h, d, du, B, A):
        return torch.empty_like(h)

    @torch.library.custom_op("serpentir::scan_read", mutates_args=())
    def scan_read(h: Tensor, d: Tensor, du: Tensor, B: Tensor, C: Tensor, A: Tensor, axis: int) -> Tensor:
        return _read_out_eager(h, d, du, B, C, A, axis)

    @scan_read.register_fake
    def _(h, d, du, B, C, A, axis):
        shape = list(torch.broadcast_shapes(h.shape, C.shape[1:]))
        del shape[axis]
        return h.new_empty((d.shape[0], *shape))

    @torch.library.custom_op("serpentir::scan_carry", mutates_args=())
    def scan_carry(decay: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
        entries, last = _carry_over_eager(decay, end)
        return entries.clone(), last.clone()

    @scan_carry.register_fake
    def _(decay, end):
        return torch.empty_like(end), end.new_empty(end.shape[1:])

    return scan_end, scan_read, scan_carry


def onnx_translations() -> dict:
    """The exporter's custom_translation_table entries: each loop as one ONNX Scan with a hand-built body."""
    import onnx_ir as ir
    from torch.onnx._internal.exporter._torchlib.ops.hop import call_op

    scan_ops()  # the ops the table names must exist
    names = iter(range(1 << 30))

    class Body:
        """One Scan body's inputs and nodes, every value named after the body (names are model-wide)."""

        def __init__(self, kind: str):
            self.tag, self.nodes = f"serpentir_{kind}{next(names)}", []

        def input(self, like: ir.Value, name: str) -> ir.Value:  # one step of `like`: its first axis dropped
            shape = ir.Shape(like.shape[1:]) if like.shape is not None else None
            return ir.Value(name=f"{self.tag}_{name}", shape=shape, type=ir.TensorType(like.dtype))

        def node(self, op: str, *args: ir.Value, **attrs) -> ir.Value:
            attributes = [ir.AttrInt64(k, v) if isinstance(v, int) else ir.AttrTensor(k, v) for k, v in attrs.items()]
            n = ir.Node("", op, list(args), attributes=attributes, num_outputs=1)
            n.outputs[0].name = f"{self.tag}_{op.lower()}{len(self.nodes)}"
            self.nodes.append(n)
            return n.outputs[0]

        def graph(self, inputs: list[ir.Value], outputs: list[ir.Value]) -> ir.Graph:
            return ir.Graph(inputs, outputs, nodes=self.nodes, name=self.tag)

    def body(h: ir.Value, xs: list[ir.Value], A: ir.Value, axis: int | None) -> ir.Graph:
        """Body inputs (h, d_t, du_t, B_t[, C_t]) -> (h', [y_t]); A is read from the enclosing graph."""
        b = Body("scan")
        h_in = ir.Value(name=f"{b.tag}_h", shape=h.shape, type=ir.TensorType(h.dtype))
        ins = [b.input(x, n) for x, n in zip(xs, ("d", "du", "B", "C"))]
        d, du, B = ins[:3]
        h_next = b.node("Add", b.node("Mul", b.node("Exp", b.node("Mul", d, A)), h_in), b.node("Mul", du, B))
        outputs = [h_next]
        if axis is not None:
            axes = b.node("Constant", value=ir.tensor([axis], dtype=ir.DataType.INT64))
            outputs.append(b.node("ReduceSum", b.node("Mul", h_next, ins[3]), axes, keepdims=0))
        return b.graph([h_in, *ins], outputs)

    def end_onnx(h, d, du, B, A):
        (final,) = call_op("Scan", h, d, du, B, _num_outputs=1, body=body(h, [d, du, B], A, None),
                           num_scan_inputs=3)
        return final

    def read_onnx(h, d, du, B, C, A, axis: int):
        rank = len(h.shape) if h.shape is not None else len(C.shape) - 1
        _, y = call_op("Scan", h, d, du, B, C, _num_outputs=2, body=body(h, [d, du, B, C], A, axis % rank),
                       num_scan_inputs=4)
        return y

    def carry_onnx(decay, end):
        """Scan over the chunks: body (h, decay_m, end_m) -> (decay_m * h + end_m, h)."""
        b = Body("carry")
        h_in, dec_in, end_in = (b.input(end, n) for n in ("h", "decay", "end"))
        graph = b.graph([h_in, dec_in, end_in], [b.node("Add", b.node("Mul", dec_in, h_in), end_in),
                                                 b.node("Identity", h_in)])
        (shape,) = call_op("Shape", end, start=1)
        (zero,) = call_op("ConstantOfShape", shape, value=ir.tensor([0.0], dtype=end.dtype))
        last, entries = call_op("Scan", zero, decay, end, _num_outputs=2, body=graph, num_scan_inputs=2)
        return entries, last

    return {torch.ops.serpentir.scan_end.default: end_onnx, torch.ops.serpentir.scan_read.default: read_onnx,
            torch.ops.serpentir.scan_carry.default: carry_onnx}
