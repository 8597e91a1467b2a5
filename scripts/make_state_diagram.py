"""Write docs/state-diagram.dot (and .svg when Graphviz is installed) from the transition
table in ``ctibridge.callstate.machine``. Run after changing TRANSITIONS; a test checks the
committed .dot matches the table."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ctibridge.callstate.machine import render_dot

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    dot = DOCS / "state-diagram.dot"
    dot.write_text(render_dot())
    if shutil.which("dot"):
        subprocess.run(
            ["dot", "-Tsvg", str(dot), "-o", str(DOCS / "state-diagram.svg")], check=True
        )
        print("wrote", dot, "and state-diagram.svg")
    else:
        print("wrote", dot, "(install graphviz for the SVG)")


if __name__ == "__main__":
    main()
