"""Small crops of real photos shipped in scikit-image, as tensors: tests stay fast and honest."""

import numpy as np
import torch


def photo_array(name: str = "chelsea", size: tuple[int, int] = (64, 80), top: int = 100, left: int = 150) -> np.ndarray:
    """An (H, W, 3) uint8 crop of a scikit-image sample photo (only ones the wheel ships)."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    h, w = size
    return np.ascontiguousarray(image[top:top + h, left:left + w])


def photo(name: str = "chelsea", size: tuple[int, int] = (64, 80), top: int = 100, left: int = 150) -> torch.Tensor:
    """The same crop as a (3, H, W) float32 tensor in [0, 1]."""
    return torch.from_numpy(photo_array(name, size, top, left)).permute(2, 0, 1).float() / 255
