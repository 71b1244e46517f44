"""Never ship a regression: a candidate replaces a bundled blind model only if no class gets worse.

Both models are scored on the same held-out photos at the same strengths (blind_validation); per
degradation class (blur, noise, JPEG, the chain) the mean gain over the class' strengths must not fall.
A fall counts as a regression when it shows in the card (0.005 dB or more: a lower number at two
decimals) or when the photos agree on it (the paired per-photo difference's 95% bootstrap interval lies
below zero). A fall that is neither is no difference measured: on a class whose curve is flat at zero,
refusing it made the verdict a coin toss (general rounds 7-9, refused by 0.001-0.004 dB of blur that the
photos did not agree on, while noise and the chain rose measurably). No photo may newly lose more than
0.1 dB against its input (the issue's floor) or lose more than under the bundled model, where it did.
Sharp photos are not a degradation class: they are held to the issue's floor (mean and worst photo at
or above 38 dB), not to the bundled model's output, because a model that sharpens a blurred photo
necessarily touches a sharp one (an identity at 66 dB against a deblurring model at 45 dB: both
invisible), and demanding the identity's number would forbid ever learning blur.
Each card keeps a history table (date, steps, minutes, per-class gain) so the trend is visible:
the table is read back from the card being replaced and one row is added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..stats import PairedDifference, paired_difference
from .blind_validation import StrengthRow

SHARP_FLOOR_DB = 38.0
VISIBLE_FALL_DB = 0.005  # a class mean this much lower prints lower at the card's two decimals
PHOTO_LOSS_FLOOR_DB = -0.1  # no held-out photo worse than its input by more than this (issue 18's floor)
CLASSES = ("clean", "blur", "noise", "jpeg", "chain")
DRAWS = "draws"  # the task's own random draws, one per photo: the gate's measure where no class applies
HISTORY_HEADING = "## History"


def row_score(row: StrengthRow) -> float:
    """A strength's score: its mean gain over the photos (for sharp photos: their mean output PSNR)."""
    return row.output["psnr"] if row.kind == "clean" else row.output["psnr"] - row.input["psnr"]


def photo_scores(row: StrengthRow) -> dict[str, float]:
    """A strength's per-photo scores, whose mean row_score is: gains (for sharp photos: output PSNR)."""
    return row.output_psnr if row.kind == "clean" else row.gains


def _judged(rows: list[StrengthRow]) -> list[StrengthRow]:
    """The rows the gate reads: the degradation classes, sharp photos and the task's own draws."""
    return [r for r in rows if r.kind in CLASSES or r.kind == DRAWS]


def class_scores(rows: list[StrengthRow]) -> dict[str, float]:
    """Per class (and the task's own draws): the mean of its strengths' scores (row_score)."""
    scores: dict[str, list[float]] = {}
    for r in _judged(rows):
        scores.setdefault(r.kind, []).append(row_score(r))
    return {k: sum(v) / len(v) for k, v in scores.items()}


def class_photo_scores(rows: list[StrengthRow]) -> dict[str, dict[str, float]]:
    """Per class: each photo's mean score over the class' strengths (photo_scores), so that a class' change
    can be read photo by photo, with an interval, beside the means the gate decides on."""
    per: dict[str, dict[str, list[float]]] = {}
    for r in _judged(rows):
        for photo, value in photo_scores(r).items():
            per.setdefault(r.kind, {}).setdefault(photo, []).append(value)
    return {kind: {photo: sum(v) / len(v) for photo, v in photos.items()} for kind, photos in per.items()}


def class_not_worse(new_mean: float, old_mean: float, diff: PairedDifference) -> bool:
    """No regression: the mean did not fall, or fell by less than the card shows and the photos do not
    agree on the fall (without per-photo scores, any fall is a regression)."""
    fall = old_mean - new_mean
    if fall <= 0:
        return True
    return fall < VISIBLE_FALL_DB and diff.n > 0 and diff.verdict != "worse"


def photo_losses(candidate: list[StrengthRow], bundled: list[StrengthRow]) -> list[str]:
    """Strengths where the candidate's worst photo loses more than 0.1 dB against its input and more than
    the bundled model's worst photo did there: one line each."""
    old_worst = {r.label: r.worst[1] for r in bundled if r.kind != "clean" and r.gains}
    lines = []
    for r in candidate:
        if r.kind == "clean" or not r.gains:
            continue
        name, gain = r.worst
        allowed = min(PHOTO_LOSS_FLOOR_DB, old_worst.get(r.label, PHOTO_LOSS_FLOOR_DB))
        if gain < allowed:
            lines.append(f"- {r.label}: {name} {gain:+.2f} dB against its input (allowed {allowed:+.2f}): WORSE")
    return lines


def sharp_worst(rows: list[StrengthRow]) -> float | None:
    """The lowest output PSNR of any sharp photo (None when the task has no sharp row)."""
    return next((r.worst[1] for r in rows if r.kind == "clean"), None)


@dataclass
class GateVerdict:
    """Whether the candidate may replace the bundled model, and one line per class saying why."""

    passed: bool
    lines: list[str]


def regression_gate(candidate: list[StrengthRow], bundled: list[StrengthRow]) -> GateVerdict:
    """The candidate passes if no degradation class gets worse (class_not_worse), no photo newly loses more
    than 0.1 dB (photo_losses) and the sharp photos (mean and worst) stay at or above 38 dB; a task whose
    strengths fall in no class (camera shake, holes) is judged on its own draws instead. Each class' line
    gives the paired per-photo difference with its 95% bootstrap interval."""
    new, old = class_scores(candidate), class_scores(bundled)
    new_photos, old_photos = class_photo_scores(candidate), class_photo_scores(bundled)
    lines, passed = [], True
    if "clean" in new:
        ok = new["clean"] >= SHARP_FLOOR_DB
        passed &= ok
        lines.append(f"- clean: {new['clean']:.2f} dB output (bundled {old.get('clean', float('nan')):.2f}; "
                     f"floor {SHARP_FLOOR_DB:.0f}): {'met' if ok else 'MISSED'}")
    judged = [k for k in CLASSES[1:] if k in new] or [k for k in (DRAWS,) if k in new]
    for kind in judged:
        diff = paired_difference(new_photos.get(kind, {}), old_photos.get(kind, {}))
        ok = class_not_worse(new[kind], old.get(kind, float("-inf")), diff)
        passed &= ok
        paired = f" (per photo: {diff.describe(digits=3, unit='dB')})" if diff.n else ""
        lines.append(f"- {kind}: {new[kind]:.3f} against {old.get(kind, float('nan')):.3f} dB gain: "
                     f"{'not worse' if ok else 'WORSE'}{paired}")
    losses = photo_losses(candidate, bundled)
    passed &= not losses
    if not losses and any(r.gains for r in candidate if r.kind != "clean"):
        losses = [f"- no photo newly loses more than {-PHOTO_LOSS_FLOOR_DB:.1f} dB against its input: met"]
    lines += losses
    worst = sharp_worst(candidate)
    if worst is not None:
        ok = worst >= SHARP_FLOOR_DB
        passed &= ok
        lines.append(f"- worst sharp photo {worst:.2f} dB (floor {SHARP_FLOOR_DB:.0f}): {'met' if ok else 'MISSED'}")
    return GateVerdict(passed, lines)


def read_history(card: Path) -> list[str]:
    """The rows of an existing card's history table (none if the card or its table is missing)."""
    if not card.is_file():
        return []
    text = card.read_text()
    if HISTORY_HEADING not in text:
        return []
    section = text.split(HISTORY_HEADING, 1)[1]
    return [line for line in section.splitlines()[1:] if re.match(r"\| \d{4}-\d\d-\d\d", line)]


def history_row(date: str, steps: str, minutes: float, scores: dict[str, float]) -> str:
    """One history line; a class the task has no strength of (a deblurring model has no JPEG) is '-'."""
    cells = ["-" if k not in scores else f"{scores[k]:.2f}" if k == "clean" else f"{scores[k]:+.2f}"
             for k in CLASSES + (DRAWS,)]
    return f"| {date} | {steps} | {minutes:.0f} | " + " | ".join(cells) + " |"


def history_table(rows: list[str]) -> str:
    """Markdown of the history: one row per bundled version, oldest first (rows written before the draws
    column existed get '-' there)."""
    columns = 3 + len(CLASSES) + 1
    head = ("| date | steps | training minutes | sharp photos (dB) | " + " | ".join(f"{k} gain (dB)" for k in CLASSES[1:])
            + " | own draws gain (dB) |\n|---|---|---:|" + "---:|" * (len(CLASSES) + 1))
    padded = [row + " - |" * (columns - (row.count("|") - 1)) for row in rows]
    return f"{HISTORY_HEADING}\n\n{head}\n" + "\n".join(padded) + "\n"
