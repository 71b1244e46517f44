"""serpentir: image restoration with Serpent, a multi-scale selective state-space network.

Public API: load_model and restore (a bundled or trained model applied to a PIL image, numpy array or
tensor, the same kind coming back), create_model, list_models, model_info, and enable_huge_pages (an
opt-in speed-up that the command line makes; importing serpentir changes nothing in the process).
Lower layers: serpentir.ops (the scan), serpentir.layers (network pieces), serpentir.models
(architectures and their registry).
"""

from .engine.api import load_model, restore
from .huge_pages import enable_huge_pages
from .models import create_model, list_models, model_info

__version__ = "0.1.0"
__all__ = ["create_model", "enable_huge_pages", "list_models", "load_model", "model_info", "restore", "__version__"]
