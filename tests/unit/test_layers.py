"""Imports flow one way: web → services → {callstate, crm, storage, bus, connectors} →
protocols → types/errors. protocols/ and callstate/ never touch asyncio or I/O layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "ctibridge"

UPPER = ("ctibridge.web", "ctibridge.services", "ctibridge.launcher", "ctibridge.cli")
IO = ("ctibridge.connectors", "ctibridge.storage", "ctibridge.bus", "ctibridge.crm")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "protocols": (*UPPER, *IO, "ctibridge.callstate", "ctibridge.demo", "asyncio"),
    "callstate": (*UPPER, *IO, "ctibridge.demo", "asyncio", "ctibridge.config"),
    "connectors": (*UPPER, "ctibridge.storage", "ctibridge.bus", "ctibridge.demo"),
    "storage": (*UPPER, "ctibridge.connectors", "ctibridge.bus", "ctibridge.demo"),
    "bus": (*UPPER, "ctibridge.connectors", "ctibridge.storage", "ctibridge.demo"),
    "services": ("ctibridge.web", "ctibridge.launcher", "ctibridge.cli", "ctibridge.demo"),
    "web": ("ctibridge.launcher", "ctibridge.cli", "ctibridge.demo"),
    "demo": (*UPPER, *IO),
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(layer: str) -> list[Path]:
    return sorted((SRC / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    assert _modules(layer), f"no modules in {layer}"
    bad = []
    for path in _modules(layer):
        if "migrations" in path.parts:
            continue
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)
