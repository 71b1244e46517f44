"""Network pieces: patchifier, VSS block and its multi-direction scan, patch merging/expansion, head."""

from .multi_direction_ssm import MultiDirectionSSM
from .padding import pad_to_multiple
from .patch_embed import PatchEmbed
from .patch_expansion import PatchExpansion
from .patch_merging import PatchMerging
from .pixel_head import PixelHead
from .s_blocks import DownSBlock, UpSBlock, vss_stage
from .scan_orders import ORDERS, direction_names, merge, scan_permutations, unroll
from .vss_block import VSSBlock

__all__ = [
    "MultiDirectionSSM", "pad_to_multiple", "PatchEmbed", "PatchExpansion", "PatchMerging", "PixelHead", "DownSBlock", "UpSBlock",
    "vss_stage", "ORDERS", "direction_names", "merge", "scan_permutations", "unroll", "VSSBlock",
]
