"""Architectures and their registry. Importing this package registers every named configuration."""

from . import serpent_configs  # noqa: F401  (registers serpent-*)
from . import baseline_configs  # noqa: F401
from .registry import ModelSpec, create_model, list_models, model_info, register_model
from .serpent import Serpent, SerpentConfig

__all__ = ["create_model", "list_models", "model_info", "register_model", "ModelSpec", "Serpent", "SerpentConfig"]
