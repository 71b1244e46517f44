"""The `serpentir` command: parses arguments and calls the layers below; no logic of its own."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from .errors import UserError


def _cmd_models(args: argparse.Namespace) -> None:
    import torch

    from .models import create_model, list_models, model_info

    print(f"{'name':<12} {'params':>10}  description")
    for name in list_models():
        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(name).parameters())
        print(f"{name:<12} {params / 1e6:>9.2f}M  {model_info(name).description}")


def _cmd_forward(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from skimage import data as skdata
    from skimage.transform import resize

    from .models import create_model, model_info

    try:
        model_info(args.model)
    except KeyError as e:
        raise UserError(e.args[0]) from None
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    image = resize(skdata.astronaut(), (args.size, args.size), anti_aliasing=True).astype(np.float32)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    with torch.no_grad():
        model(x)  # warm-up
        start = time.perf_counter()
        y = model(x)
        elapsed = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    print(f"model {args.model}: input {tuple(x.shape)} (skimage astronaut) -> output {tuple(y.shape)}, "
          f"{params / 1e6:.2f}M parameters, forward {elapsed * 1000:.0f} ms on {torch.get_num_threads()} CPU threads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serpentir", description="Image restoration with Serpent state-space networks.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log which scan backend is used, etc.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list the registered model configurations")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("forward", help="run one forward pass of a model on a real bundled photo and time it")
    p.add_argument("--model", default="serpent-t", help="registered model name (see `serpentir models`)")
    p.add_argument("--size", type=int, default=256, help="square input size in pixels (default 256)")
    p.set_defaults(func=_cmd_forward)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args.func(args)
    except UserError as e:
        print(f"serpentir: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("serpentir: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
