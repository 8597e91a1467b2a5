#!/usr/bin/env python3
"""Write the Kazoo blackhole replay fixtures in ``tests/fixtures/kazoo/``.

Each fixture is one demo scenario with fixed parameters, start time and seed, written as
``<name>.jsonl``: one websocket message per line, exactly as a blackhole client receives
it. ``inbound_answered_legacy.jsonl`` holds the same call in the old 3.x ``{name, args}``
shape. The output is deterministic: running this twice gives identical bytes.

Usage::

    .venv/bin/python scripts/make_kazoo_fixtures.py            # (re)write the files
    .venv/bin/python scripts/make_kazoo_fixtures.py --check    # exit 1 if any differs
    .venv/bin/python scripts/make_kazoo_fixtures.py --out DIR  # write elsewhere

The ``<name>.expected.json`` files beside them are written by hand, not by this script.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ctibridge.demo.directory import DEMO, Caller
from ctibridge.demo.scenarios.registry import SCENARIOS
from ctibridge.demo.scenarios.script import ScenarioContext, Step, greg_from_unix
from ctibridge.demo.scenarios.wire import blackhole_message, legacy_message

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "kazoo"


@dataclass(frozen=True)
class Fixture:
    name: str
    scenario: str
    start: str
    """UTC, ISO 8601 with a ``Z``."""
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    route_vars_on_create: bool = True
    legacy: bool = False


def _caller(number: str) -> Caller:
    return next(caller for caller in DEMO.callers if caller.number == number)


_A = DEMO.agent

FIXTURES = (
    Fixture(
        "inbound_answered",
        "inbound_answered",
        "2026-11-21T09:14:05Z",
        seed=1101,
        params={
            "agent": _A("101"),
            "caller": _caller("+447700900123"),
            "did": "+441202555100",
            "ring_seconds": 7,
            "talk_seconds": 94,
        },
        legacy=True,
    ),
    Fixture(
        "inbound_missed",
        "inbound_missed",
        "2026-11-21T09:31:40Z",
        seed=1102,
        params={"agent": _A("102"), "caller": _caller("+447700900457"), "ring_seconds": 12},
        route_vars_on_create=False,
    ),
    Fixture(
        "inbound_voicemail",
        "inbound_voicemail",
        "2026-11-21T10:02:18Z",
        seed=1103,
        params={
            "agent": _A("103"),
            "caller": _caller("+441632960274"),
            "ring_seconds": 20,
            "message_seconds": 25,
        },
    ),
    Fixture(
        "inbound_hold",
        "inbound_hold",
        "2026-11-21T10:45:00Z",
        seed=1104,
        params={
            "agent": _A("104"),
            "caller": _caller("+441134960215"),
            "ring_seconds": 5,
            "talk_seconds": 30,
            "hold_seconds": 20,
            "resumed_seconds": 40,
        },
    ),
    Fixture(
        "inbound_blind_transfer",
        "inbound_blind_transfer",
        "2026-11-21T11:20:30Z",
        seed=1105,
        params={
            "agents": (_A("101"), _A("105")),
            "caller": _caller("+442079460381"),
            "did": "+441202555100",
            "ring_seconds": 4,
            "talk_seconds": 40,
            "transfer_ring_seconds": 5,
            "transferred_talk_seconds": 60,
        },
    ),
    Fixture(
        "inbound_attended_transfer",
        "inbound_attended_transfer",
        "2026-11-21T13:05:12Z",
        seed=1106,
        params={
            "agents": (_A("102"), _A("106")),
            "caller": _caller("+441214960357"),
            "ring_seconds": 5,
            "talk_seconds": 30,
            "consult_ring_seconds": 4,
            "consult_seconds": 20,
            "transferred_talk_seconds": 90,
        },
    ),
    Fixture(
        "ring_group",
        "ring_group",
        "2026-11-21T13:40:00Z",
        seed=1107,
        params={
            "agents": (_A("103"), _A("104"), _A("105")),
            "caller": _caller("+441614960226"),
            "answered_by": 1,
            "ring_seconds": 8,
            "talk_seconds": 50,
        },
    ),
    Fixture(
        "outbound_answered",
        "outbound_answered",
        "2026-11-21T14:02:09Z",
        seed=1108,
        params={
            "agent": _A("105"),
            "number": "+441632960741",
            "ring_seconds": 9,
            "early_media_after": 2,
            "talk_seconds": 120,
        },
    ),
    Fixture(
        "outbound_busy",
        "outbound_busy",
        "2026-11-21T14:30:50Z",
        seed=1109,
        params={"agent": _A("106"), "number": "+12025550143", "ring_seconds": 3},
    ),
    Fixture(
        "internal_answered",
        "internal_answered",
        "2026-11-21T15:00:00Z",
        seed=1110,
        params={"caller": _A("101"), "callee": _A("104"), "ring_seconds": 5, "talk_seconds": 45},
    ),
    Fixture(
        "internal_missed",
        "internal_missed",
        "2026-11-21T15:12:30Z",
        seed=1111,
        params={"caller": _A("103"), "callee": _A("102"), "ring_seconds": 15},
    ),
    Fixture(
        "click_to_dial",
        "click_to_dial",
        "2026-11-21T15:45:20Z",
        seed=1112,
        params={
            "agent": _A("106"),
            "number": "+441314960085",
            "request_id": "c2d-5f1e9a04",
            "ring_seconds": 7,
            "talk_seconds": 60,
        },
    ),
    Fixture(
        "recorded_inbound",
        "recorded_inbound",
        "2026-11-21T16:10:00Z",
        seed=1113,
        params={
            "agent": _A("105"),
            "caller": _caller("+441174960463"),
            "ring_seconds": 6,
            "talk_seconds": 75,
        },
    ),
    Fixture(
        "duplicate_destroy_after_move",
        "duplicate_destroy_after_move",
        "2026-11-21T16:40:00Z",
        seed=1114,
        params={
            "agent": _A("101"),
            "caller": _caller("+441314960419"),
            "did": "+441202555100",
            "ring_seconds": 3,
            "talk_seconds": 20,
            "moved_talk_seconds": 15,
            "hold_seconds": 10,
            "resumed_seconds": 30,
        },
    ),
)


def steps_for(fixture: Fixture) -> list[Step]:
    start = datetime.fromisoformat(fixture.start.replace("Z", "+00:00"))
    ctx = ScenarioContext(
        account=DEMO.account_id,
        realm=DEMO.realm,
        start_greg=greg_from_unix(start.timestamp()),
        rng=random.Random(fixture.seed),
        media_server=DEMO.media_servers[0],
        route_vars_on_create=fixture.route_vars_on_create,
    )
    return SCENARIOS[fixture.scenario](ctx, **fixture.params)


def _lines(messages: list[dict[str, Any]]) -> bytes:
    text = "".join(
        json.dumps(m, separators=(",", ":"), ensure_ascii=False) + "\n" for m in messages
    )
    return text.encode()


def render(fixture: Fixture) -> dict[str, bytes]:
    """File name → content for one fixture."""
    events = [step.data for step in steps_for(fixture)]
    files = {
        f"{fixture.name}.jsonl": _lines([blackhole_message(DEMO.account_id, e) for e in events])
    }
    if fixture.legacy:
        files[f"{fixture.name}_legacy.jsonl"] = _lines([legacy_message(e) for e in events])
    return files


def render_all() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for fixture in FIXTURES:
        files.update(render(fixture))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=FIXTURE_DIR)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, content in render_all().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_bytes() != content:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for name in stale:
        print(f"out of date: {name}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
