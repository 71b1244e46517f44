"""Never ship a regression: a candidate replaces a bundled blind model only if it is better in every class.

Both models are scored on the same held-out photos at the same strengths (blind_validation); per
degradation class (blur, noise, JPEG, the chain) the mean gain over the class' strengths must not fall.
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

from ..stats import paired_difference
from .blind_validation import StrengthRow

SHARP_FLOOR_DB = 38.0
CLASSES = ("clean", "blur", "noise", "jpeg", "chain")
DRAWS = "draws"  # the task's own random draws, one per photo: the gate's measure where no class applies
HISTORY_HEADING = "## History"


def row_score(row: StrengthRow) -> float:
    """A strength's score: its mean gain over the photos (for sharp photos: their mean output PSNR)."""
    return row.output["psnr"] if row.kind == "clean" else row.output["psnr"] - row.input["psnr"]


def class_scores(rows: list[StrengthRow]) -> dict[str, float]:
    """Per class (and the task's own draws): the mean of its strengths' scores (row_score)."""
    scores: dict[str, list[float]] = {}
    for r in rows:
        if r.kind in CLASSES or r.kind == DRAWS:
            scores.setdefault(r.kind, []).append(row_score(r))
    return {k: sum(v) / len(v) for k, v in scores.items()}


def class_photo_scores(rows: list[StrengthRow]) -> dict[str, dict[str, float]]:
    """Per class: each photo's mean score over the class' strengths, so that a class' change can be read
    photo by photo, with an interval, beside the means the gate decides on."""
    per: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if r.kind in CLASSES or r.kind == DRAWS:
            for photo, value in (r.output_psnr if r.kind == "clean" else r.gains).items():
                per.setdefault(r.kind, {}).setdefault(photo, []).append(value)
    return {kind: {photo: sum(v) / len(v) for photo, v in photos.items()} for kind, photos in per.items()}


def _paired(kind: str, new: dict, old: dict) -> str:
    """' (per photo: -0.004 [-0.007, -0.001] dB: worse)', or '' where the rows carry no per-photo scores."""
    diff = paired_difference(new.get(kind, {}), old.get(kind, {}))
    return f" (per photo: {diff.describe(digits=3, unit='dB')})" if diff.n else ""


def sharp_worst(rows: list[StrengthRow]) -> float | None:
    """The lowest output PSNR of any sharp photo (None when the task has no sharp row)."""
    return next((r.worst[1] for r in rows if r.kind == "clean"), None)


@dataclass
class GateVerdict:
    """Whether the candidate may replace the bundled model, and one line per class saying why."""

    passed: bool
    lines: list[str]


def regression_gate(candidate: list[StrengthRow], bundled: list[StrengthRow]) -> GateVerdict:
    """The candidate passes if no degradation class gets worse and the sharp photos (mean and worst) stay
    at or above 38 dB; a task whose strengths fall in no class (camera shake, holes) is judged on its
    own draws instead. Each class' line also gives the paired per-photo difference with its 95% bootstrap
    interval: the rule stays the means', the interval says how much of a fall was measured at all."""
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
        ok = new[kind] >= old.get(kind, float("-inf"))
        passed &= ok
        lines.append(f"- {kind}: {new[kind]:.2f} against {old.get(kind, float('nan')):.2f} dB gain: "
                     f"{'not worse' if ok else 'WORSE'}{_paired(kind, new_photos, old_photos)}")
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
