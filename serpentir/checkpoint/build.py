"""Building a model and a task from names, with the user's mistakes turned into one-line errors.

The model's input channels follow the task: image channels plus the task's extra channels (the mask
of inpainting), so a config never has to repeat what the task already says.
"""

from __future__ import annotations

from torch import nn

from ..errors import UserError


def build_task(name: str, params: dict | None = None):
    """A degradation by registered name, e.g. build_task("gaussian_deblur", sigma=2.0)."""
    from ..degradations import get_task

    try:
        return get_task(name, **(params or {}))
    except UserError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"bad parameters for task {name!r}: {_message(e)}") from None


def build_model(name: str, kwargs: dict | None, *, channels: int, extra_channels: int = 0) -> nn.Module:
    """A registered model whose in/out channels fit `channels`-channel images (+ extra input channels)."""
    from ..models import create_model, model_info

    kwargs = dict(kwargs or {})
    try:
        model_info(name)
    except KeyError as e:
        raise UserError(_message(e)) from None
    wanted = {"in_channels": channels + extra_channels, "out_channels": channels}
    for key, value in wanted.items():
        if key in kwargs and kwargs[key] != value:
            raise UserError(f"model kwarg {key}={kwargs[key]} does not fit the data: {channels}-channel images "
                            f"plus {extra_channels} task channel(s) need {key}={value} (leave it out; it is set for you)")
        kwargs[key] = value
    try:
        return create_model(name, **kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"bad kwargs for model {name!r}: {_message(e)}") from None


def _message(e: BaseException) -> str:
    text = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
    return " ".join(text.split())
