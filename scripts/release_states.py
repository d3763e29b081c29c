"""Regenerate docs/reference/release-states.md from release_review/states.py.

Run from the repository root: ``.venv/bin/python scripts/release_states.py`` (the same page as
``shuyu release states --write docs/reference/release-states.md``). A test checks that the
committed page is the generated one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from release_review.states import states_markdown  # noqa: E402

PAGE = ROOT / "docs" / "reference" / "release-states.md"


def main() -> None:
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(states_markdown(), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
