"""`serpentir models`, `tasks` and `forward`: what is registered, and one timed forward pass."""

from __future__ import annotations

import argparse
import time

from ..errors import UserError
from .args import positive_int, wrap


def _cmd_models(args: argparse.Namespace) -> None:
    import torch

    from ..models import create_model, list_models, model_info

    print(f"{'name':<12} {'params':>10}  description")
    for name in list_models():
        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(name).parameters())
        print(f"{name:<12} {params / 1e6:>9.2f}M  {model_info(name).description}")


def _cmd_tasks(args: argparse.Namespace) -> None:
    from ..degradations import get_task, list_tasks
    from ..infer import bundled_tasks

    bundled = set(bundled_tasks())
    print(f"{'name':<16} {'bundled':<8} description")
    for name in list_tasks():
        print(f"{name:<16} {'yes' if name in bundled else 'no':<8} {get_task(name).description}")


def _cmd_forward(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from skimage import data as skdata
    from skimage.transform import resize

    from ..models import create_model, model_info

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


def add_models_parser(sub) -> None:
    p = sub.add_parser(
        "models", help="list the registered model configurations",
        description=wrap("List every registered model configuration (the names `serpentir train` and "
                         "`serpentir forward` take) with its parameter count and a one-line description. "
                         "Counting builds each model without memory (PyTorch's meta device), so this is instant."))
    p.set_defaults(func=_cmd_models)


def add_tasks_parser(sub) -> None:
    p = sub.add_parser(
        "tasks", help="list the restoration tasks (degradations) and which have bundled weights",
        description=wrap("List every restoration task: the degradation a model learns to undo, with its "
                         "parameters. 'bundled' says whether a trained model ships with serpentir (usable by "
                         "`serpentir restore --task NAME` without --weights); any task can be trained with "
                         "`serpentir train`."))
    p.set_defaults(func=_cmd_tasks)


def add_forward_parser(sub) -> None:
    p = sub.add_parser(
        "forward", help="run one forward pass of a model on a real bundled photo and time it",
        description=wrap("Build a registered model with random weights (seed 0), run it once to warm up and once "
                         "timed on scikit-image's astronaut photo resized to SIZE x SIZE, and print the input and "
                         "output shapes, the parameter count and the time: a check that a model runs here, and "
                         "how fast, before training it."))
    p.add_argument("--model", default="serpent-t", help="registered model name (see `serpentir models`)")
    p.add_argument("--size", type=positive_int, default=256, help="square input size in pixels (default 256)")
    p.set_defaults(func=_cmd_forward)
