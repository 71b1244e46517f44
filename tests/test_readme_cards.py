"""The README's per-strength tables of the bundled models are copies of their cards' tables (issue 18: "the
README's tables are the cards' numbers"): a model re-bundled without its README table copied again fails here."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARD_TABLE = re.compile(r"\(from <code>serpentir/weights/(\w+)\.md</code>\)|\(means; from `(\w+)\.md`\):")


def _table_after(text: str, start: int) -> list[str]:
    """The rows of the first markdown table after `start`."""
    lines = text[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_readme_model_tables_are_their_cards_tables():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    copies = [(m.group(1) or m.group(2), m.end()) for m in CARD_TABLE.finditer(readme)]
    assert {"general", "deblur", "jpeg_blind", "motion_deblur"} <= {name for name, _ in copies}
    for name, start in copies:
        readme_rows = _table_after(readme, start)
        card = (ROOT / "serpentir" / "weights" / f"{name}.md").read_text(encoding="utf-8")
        card_rows = _table_after(card, card.index("| degradation | input PSNR"))
        assert readme_rows == card_rows, f"README's {name} table differs from serpentir/weights/{name}.md"
