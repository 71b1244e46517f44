"""`serpentir serve` and `export`: the bundled models behind a web page, or as an ONNX graph."""

from __future__ import annotations

import argparse

from .args import non_negative_int, positive_float, positive_int, wrap


def _cmd_serve(args: argparse.Namespace) -> None:
    from ..serve import Limits, serve  # the web extra's modules are imported only here

    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                    queue_size=args.queue_size, workers=args.workers)
    serve(args.host, args.port, limits=limits, device=args.device, tile=args.tile)


def add_serve_parser(sub) -> None:
    defaults = {"max_upload_mb": 25, "max_pixels": 4_000_000, "queue_size": 4, "workers": 1}
    p = sub.add_parser(
        "serve", help="a web page (and HTTP API) to restore photos with the bundled models",
        description=wrap("Serve a page where a photo is uploaded, restored with a bundled model and compared before "
                          "and after, plus an HTTP API for scripts. Needs the web extra: "
                          'pip install "serpentir[web]". Listens on this machine only unless --host says otherwise.'),
        epilog="examples:\n"
               "  serpentir serve                                    # then open http://127.0.0.1:7860/\n"
               "  curl --data-binary @blurry.png -o sharp.png http://127.0.0.1:7860/api/restore\n"
               "  curl --data-binary @noisy.png -o clean.png 'http://127.0.0.1:7860/api/restore?task=denoise'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=non_negative_int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: a GPU if there is one")
    p.add_argument("--tile", type=positive_int, metavar="N", help="restore in N x N tiles to bound memory")
    p.add_argument("--max-upload-mb", type=positive_float, default=defaults["max_upload_mb"], metavar="MB",
                   help="largest upload accepted (default %(default)s)")
    p.add_argument("--max-pixels", type=positive_int, default=defaults["max_pixels"], metavar="N",
                   help="largest image accepted, width x height (default %(default)s)")
    p.add_argument("--queue-size", type=positive_int, default=defaults["queue_size"], metavar="N",
                   help="restorations that may wait; more get 503 with Retry-After (default %(default)s)")
    p.add_argument("--workers", type=positive_int, default=defaults["workers"], metavar="N",
                   help="restorations run at once (default %(default)s; more only share the same cores)")
    p.set_defaults(func=_cmd_serve)


# --- export -----------------------------------------------------------------------------------------

def _cmd_export(args: argparse.Namespace) -> None:
    from ..export.onnx import PARITY_TOLERANCE, export_onnx

    result = export_onnx(args.onnx, task=args.task, weights=args.weights, overwrite=args.overwrite)
    check = ("onnxruntime not installed: not checked" if result.max_abs_diff is None else
             f"max |onnxruntime - PyTorch| = {result.max_abs_diff:.1e} on a {result.check_size[1]}x"
             f"{result.check_size[0]} photo crop (limit {PARITY_TOLERANCE:g})")
    print(f"wrote {result.path} (task {result.task}, input (N, {result.channels}, H, W) float32 in [0, 1], "
          f"any N, H, W); {check}")


def add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="write a model as an ONNX graph (dynamic height and width) for onnxruntime",
        description=wrap("Export a bundled task's model or a checkpoint to ONNX (needs pip install "
                          "'serpentir[onnx]'). The graph takes any batch, height and width, clamps its output to "
                          "[0, 1] like `restore`, and is checked against PyTorch with onnxruntime after writing."),
        epilog="examples:\n"
               "  serpentir export --onnx deblur.onnx --task gaussian_deblur\n"
               "  serpentir export --onnx mine.onnx --weights last.safetensors",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="export the bundled weights of this task")
    source.add_argument("--weights", metavar="CKPT", help="export this checkpoint from `serpentir train`")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    p.set_defaults(func=_cmd_export)
