"""The baselines Serpent is compared with, in their published configurations.

Parameter counts (checked in tests/test_baselines.py): swinir-b 11.50M (the denoising / JPEG form,
no upsampler; 11.90M with the classical SR x4 upsampler, as published), restormer 26.13M,
nafnet-w32 17.11M and nafnet-w64 67.89M (GoPro), unet 2.44M (within 10% of serpent-b).

The "-t" sizes are scaled down to serpent-t's 0.37M parameters (within 10%) for the same-budget
comparison of configs/compare/: swinir-t 0.35M, nafnet-t 0.41M, unet-t 0.37M, restormer-t 0.39M.

Every baseline takes head_init="identity" (default "default", as published and as every checkpoint
before it): the last layer starts at N(0, 1e-3), bias 0, as Serpent's head does, so all start near
their input (issue 19's equal starts; configs/ablations/*_v2 studies pass it).
"""

from .nafnet import NAFNet
from .registry import register_model
from .restormer import Restormer
from .swinir import SwinIR
from .unet import UNet

register_model(
    "swinir-t", SwinIR, "swinir", "SwinIR tiny, serpent-t's size: width 60, 2 groups x 4 Swin layers, window 8",
    embed_dim=60, depths=(4,) * 2, num_heads=6, window_size=8, mlp_ratio=2.0,
)
register_model(
    "swinir-s", SwinIR, "swinir", "SwinIR small: width 60, 4 groups x 6 Swin layers, window 8",
    embed_dim=60, depths=(6,) * 4, num_heads=6, window_size=8, mlp_ratio=2.0,
)
register_model(
    "swinir-b", SwinIR, "swinir", "SwinIR (denoising/JPEG form): width 180, 6 groups x 6 layers, 6 heads",
    embed_dim=180, depths=(6,) * 6, num_heads=6, window_size=8, mlp_ratio=2.0,
)
register_model(
    "swinir-l", SwinIR, "swinir", "SwinIR large: width 240, 9 groups x 6 layers, 8 heads",
    embed_dim=240, depths=(6,) * 9, num_heads=8, window_size=8, mlp_ratio=2.0,
)
register_model(
    "restormer", Restormer, "restormer", "Restormer as published: dim 48, blocks 4/6/6/8 + 4 refinement",
    dim=48, num_blocks=(4, 6, 6, 8), num_refinement_blocks=4, heads=(1, 2, 4, 8),
    ffn_expansion_factor=2.66, bias=False, layernorm_type="WithBias",
)
register_model(
    "restormer-t", Restormer, "restormer", "Restormer tiny, serpent-t's size: dim 8, blocks 2/2/3/3 + 2 refinement",
    dim=8, num_blocks=(2, 2, 3, 3), num_refinement_blocks=2, heads=(1, 2, 4, 8),
    ffn_expansion_factor=2.66, bias=False, layernorm_type="WithBias",
)
register_model(
    "nafnet-t", NAFNet, "nafnet", "NAFNet tiny, serpent-t's size: width 16, 3 levels of 1 block, middle 2",
    width=16, enc_blocks=(1, 1, 1), middle_blocks=2, dec_blocks=(1, 1, 1),
)
register_model(
    "nafnet-w32", NAFNet, "nafnet", "NAFNet width 32, GoPro configuration (enc 1/1/1/28, middle 1)",
    width=32, enc_blocks=(1, 1, 1, 28), middle_blocks=1, dec_blocks=(1, 1, 1, 1),
)
register_model(
    "nafnet-w64", NAFNet, "nafnet", "NAFNet width 64, GoPro configuration (enc 1/1/1/28, middle 1)",
    width=64, enc_blocks=(1, 1, 1, 28), middle_blocks=1, dec_blocks=(1, 1, 1, 1),
)
register_model(
    "unet-t", UNet, "unet", "plain conv U-Net, 4 levels from width 14: serpent-t's parameter budget",
    width=14, levels=4,
)
register_model(
    "unet", UNet, "unet", "plain conv U-Net, 4 levels from width 36: serpent-b's parameter budget",
    width=36, levels=4,
)
