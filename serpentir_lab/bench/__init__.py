"""Measuring cost: parameters, FLOPs (with scans counted by formula), memory and latency."""

from .flops import FlopCount, count_flops

__all__ = ["FlopCount", "count_flops"]
