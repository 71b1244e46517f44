"""Image-quality scores per image, shape (N,): PSNR and SSIM (fidelity), LPIPS (perceptual distance).

PSNR and SSIM follow skimage.metrics and offer the Y-channel / border-crop convention of
restoration papers; LPIPS is AlexNet v0.1 with bundled weights (no download, no torchvision).
band_mse / band_psnr split the error by radial spatial frequency (per image, shape (N, bands)).
"""

from .bands import BAND_EDGES, BAND_NAMES, band_labels, band_mse, band_psnr
from .lpips import lpips
from .paper_convention import rgb_to_y
from .psnr import psnr
from .ssim import ssim

__all__ = ["psnr", "ssim", "lpips", "rgb_to_y", "band_mse", "band_psnr", "band_labels", "BAND_EDGES",
           "BAND_NAMES"]
