"""serpentir: image restoration with Serpent, a multi-scale selective state-space network.

Public API: load_model and restore (a bundled or trained model applied to a PIL image, numpy array or
tensor, the same kind coming back), create_model, list_models, model_info, and enable_huge_pages (an
opt-in speed-up that the command line makes; importing serpentir changes nothing in the process).

The packages, bottom up: ops (the scan), layers (network pieces), models (architectures and their
registry), degradations, image_io, metrics, data; checkpoint (the file format), infer (the restore
API, files and folders, tiling, memory planning, the bundled weights' catalogue, evaluation), train
(config, loop, run folders); serve, export and cli on top. The experiment and release workshop is a
separate package, serpentir_lab, which this library never imports.
"""

from .huge_pages import enable_huge_pages
from .infer.api import load_model, restore
from .models import create_model, list_models, model_info

__version__ = "0.1.0"
__all__ = ["create_model", "enable_huge_pages", "list_models", "load_model", "model_info", "restore", "__version__"]
