"""serpentir: image restoration with Serpent, a multi-scale selective state-space network.

Public API: load_model and restore (a bundled or trained model applied to a PIL image, numpy array or
tensor, the same kind coming back), create_model, list_models, model_info.

The packages, bottom up: ops (the scan), layers (network pieces), models (architectures and their
registry), degradations, image_io, metrics, data; checkpoint (the file format), infer (the restore
API, files and folders, tiling, memory planning, the bundled weights' catalogue, evaluation), train
(config, loop, run folders); serve, export and cli on top. The experiment and release workshop is a
separate package, serpentir_lab, which this library never imports.
"""

import os as _os

# Large fresh tensors pay page faults on every touch; transparent huge pages made the scan 1.3-3x
# faster on the CPU (shared/README.md section 5). torch reads this once, at its first allocation,
# so it only takes effect when serpentir is imported before torch allocates. Set it to 0 to opt out.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from .infer.api import load_model, restore  # noqa: E402
from .models import create_model, list_models, model_info  # noqa: E402

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_model", "model_info", "restore", "__version__"]
