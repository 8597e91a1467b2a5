"""The ``ctibridge`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print("ctibridge: not wired yet", args)
    return 0
