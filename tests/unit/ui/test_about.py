"""The About tab and README say the same about the scores: README's block between the about-scores markers is the
About tab's "The scores" section (ui/about.py is the one source; ``python -m tests.unit.ui.test_about --write``
rewrites README's block from it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ui.about import ABOUT

README = Path(__file__).resolve().parents[3] / "README.md"
MARKERS = re.compile(r"<!-- about-scores:start -->\n(.*?)<!-- about-scores:end -->", re.S)


def scores_section() -> str:
    """The About tab's "The scores" section, without its heading."""
    return ABOUT.split("## The scores\n", 1)[1].split("\n## ", 1)[0].strip() + "\n"


def test_readme_says_what_the_about_tab_says_about_the_scores():
    blocks = MARKERS.findall(README.read_text())
    assert len(blocks) == 1, "README needs one about-scores block"
    assert blocks[0] == scores_section(), "run: python -m tests.unit.ui.test_about --write"


def test_the_about_tab_states_the_estimand_and_the_interval_as_built():
    section = scores_section()
    assert "never ranked on a partial average" in section and "trained on" in section
    assert "pooled within targets" in section and "Welch–Satterthwaite" in section


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    text = README.read_text()
    block = f"<!-- about-scores:start -->\n{scores_section()}<!-- about-scores:end -->"
    README.write_text(MARKERS.sub(lambda _: block, text) if MARKERS.search(text) else text)
    print("README's about-scores block rewritten" if MARKERS.search(text) else "no markers in README")
