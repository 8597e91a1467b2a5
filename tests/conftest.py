"""Suite-wide checks."""

from __future__ import annotations

from pathlib import Path

import pytest

CALLSTATE = Path(__file__).parents[1] / "src" / "ctibridge" / "callstate"


def pytest_configure(config: pytest.Config) -> None:
    """The call-state core may be compiled in place (mypyc, see setup.py). A compiled module
    older than its source would test stale code: refuse to run rather than mislead."""
    stale = []
    for compiled in CALLSTATE.glob("*.so"):
        source = CALLSTATE / (compiled.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
            stale.append(source.name)
    if stale:
        raise pytest.UsageError(
            f"compiled {', '.join(sorted(stale))} older than the source: run scripts/setup "
            "(or set CTIBRIDGE_PURE_PYTHON=1 and reinstall for pure Python)"
        )
