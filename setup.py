"""Build hook: compile the call-state core with mypyc where a C compiler is available.

The normaliser runs on every channel event. mypyc, the mypy project's compiler for typed
Python, turns these strictly typed modules into C extensions with the same behaviour.
Without a C compiler, or with ``CTIBRIDGE_PURE_PYTHON=1``, ctibridge installs as plain
Python and works the same, only slower.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "src/ctibridge/callstate/events.py",
    "src/ctibridge/callstate/model.py",
    "src/ctibridge/callstate/legs.py",
    "src/ctibridge/callstate/derive.py",
    "src/ctibridge/callstate/machine.py",
    "src/ctibridge/callstate/normaliser.py",
]


class OptionalBuildExt(build_ext):
    """Build the extensions if possible; otherwise fall back to pure Python."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "pure Python"
            print(f"ctibridge: compiling the call-state core failed ({exc}); "
                  "installing pure Python", file=sys.stderr)
            self.extensions = []


def _extensions() -> list[Any]:
    if os.environ.get("CTIBRIDGE_PURE_PYTHON") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("ctibridge: mypyc not available; installing pure Python", file=sys.stderr)
        return []
    return list(mypycify(["--strict", *COMPILED], opt_level="3"))


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
