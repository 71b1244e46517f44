"""Image files in and out, keeping what a user would miss: bit depth, greyscale, alpha, ICC profile, EXIF.

Two levels:
- `read_picture` / `write_picture`: a `Picture` (the colour to restore, plus the alpha samples, bit
  depth, ICC profile and EXIF that must come back unchanged), for restoring files faithfully.
- `load_image` / `save_image`: plain (C, H, W) float tensors in [0, 1] for training and scoring
  (alpha composited on white, as such images are usually shown).

Every failure a user can cause (a missing, truncated or non-image file, an unwritable name) becomes
a `UserError` whose message starts with the file name.
"""

from .files import IMAGE_EXTENSIONS, list_images, verify_image
from .picture import Picture
from .read import load_image, picture_from_pil, read_picture
from .write import save_image, write_picture

__all__ = ["IMAGE_EXTENSIONS", "Picture", "list_images", "load_image", "picture_from_pil",
           "read_picture", "save_image", "verify_image", "write_picture"]
