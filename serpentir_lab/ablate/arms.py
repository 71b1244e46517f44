"""A study's variants grouped into arms, each arm read against the study's first arm.

Variants named `<arm>-s<digits>` are seeds of arm `<arm>` (any other name is an arm of one run). One
seed's ranking is noise at these budgets, so an arm is compared with the reference arm photo by
photo: per test photo, the arm's score averaged over its seeds minus the reference's averaged over
its seeds, then the mean of those differences with a 95% percentile bootstrap interval over photos
(serpentir_lab.stats). The same is done for each frequency band's PSNR (serpentir.metrics.bands).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..stats import PairedDifference, paired_difference
from .result import VariantResult

_SEEDED = re.compile(r"^(?P<arm>.+)-s(?P<seed>\d+)$")


def arm_of(variant: str) -> tuple[str, int | None]:
    """('serpent-t', 1) for 'serpent-t-s1'; (name, None) for a name without a seed suffix."""
    match = _SEEDED.match(variant)
    return (match["arm"], int(match["seed"])) if match else (variant, None)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


@dataclass
class Arm:
    """The scored seeds of one arm, in the study file's order."""

    name: str
    runs: list[VariantResult]

    @property
    def seeds(self) -> list[int | None]:
        return [arm_of(r.variant)[1] for r in self.runs]

    def by_seed(self, metric: str = "psnr") -> list[float]:
        """Each seed's mean over the photos."""
        return [getattr(r.row, metric) for r in self.runs]

    def mean(self, metric: str = "psnr") -> float:
        """Mean over seeds of each seed's mean over the photos."""
        return _mean(self.by_seed(metric))

    def photo_means(self, metric: str = "psnr", band: int | None = None) -> dict[str, float]:
        """Per photo, the score averaged over the arm's seeds (photos every seed scored only).

        band: the band_psnr of that band instead of `metric`.
        """
        rows = [{p["photo"]: (p["band_psnr"][band] if band is not None else p[metric]) for p in r.row.per_photo}
                for r in self.runs]
        photos = [p for p in rows[0] if all(p in other for other in rows[1:])] if rows else []
        return {p: sum(row[p] for row in rows) / len(rows) for p in photos}

    def band_means(self) -> list[float]:
        """Per band, the mean over photos of the per-photo band PSNR averaged over seeds."""
        bands = len(self.runs[0].row.per_photo[0]["band_psnr"]) if self.runs and self.runs[0].row.per_photo else 0
        return [_mean(list(self.photo_means(band=b).values())) for b in range(bands)]


@dataclass
class ArmReading:
    """One arm and, unless it is the reference (or the reference is not scored yet), its paired differences."""

    arm: Arm
    psnr: PairedDifference | None
    ssim: PairedDifference | None
    bands: list[PairedDifference] | None


def group_arms(variant_order: list[str], results: list[VariantResult]) -> list[Arm]:
    """The scored variants as arms, in the order each arm first appears in the study file."""
    by_name = {r.variant: r for r in results}
    arms: dict[str, Arm] = {}
    for name in variant_order:
        if name in by_name:
            arms.setdefault(arm_of(name)[0], Arm(arm_of(name)[0], [])).runs.append(by_name[name])
    return list(arms.values())


def read_arms(variant_order: list[str], results: list[VariantResult]) -> tuple[str, list[ArmReading]]:
    """The reference arm's name (the study's first arm) and every scored arm read against it."""
    reference = arm_of(variant_order[0])[0]
    arms = group_arms(variant_order, results)
    ref = next((a for a in arms if a.name == reference), None)
    readings = []
    for arm in arms:
        if ref is None or arm is ref:
            readings.append(ArmReading(arm, None, None, None))
            continue
        bands = [paired_difference(arm.photo_means(band=b), ref.photo_means(band=b))
                 for b in range(len(arm.band_means()))]
        readings.append(ArmReading(arm, paired_difference(arm.photo_means("psnr"), ref.photo_means("psnr")),
                                   paired_difference(arm.photo_means("ssim"), ref.photo_means("ssim")), bands))
    return reference, readings
