"""Kazoo captures through ``ctibridge replay``: the calls match the hand-checked records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ctibridge.services.replay import (
    asterisk_events,
    call_record,
    freeswitch_events,
    kazoo_events,
    replay,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kazoo"
CAPTURES = sorted(FIXTURES.glob("*.jsonl"))


def _expected(capture: Path) -> list[dict[str, object]]:
    name = capture.stem.removesuffix("_legacy")
    return json.loads((FIXTURES / f"{name}.expected.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.stem for c in CAPTURES])
def test_capture_replays_to_the_expected_calls(capture: Path) -> None:
    with capture.open() as lines:
        got = [call_record(c) for c in replay(kazoo_events(lines))]
    assert got == _expected(capture)


def test_every_capture_has_an_expectation() -> None:
    assert CAPTURES
    for capture in CAPTURES:
        assert (FIXTURES / f"{capture.stem.removesuffix('_legacy')}.expected.json").exists()


def test_the_command_prints_one_json_line_per_call_and_reports_bad_lines(tmp_path: Path) -> None:
    capture = tmp_path / "mixed.jsonl"
    good = (FIXTURES / "inbound_answered.jsonl").read_text().splitlines()
    capture.write_text("\n".join([good[0], "{not json", *good[1:], '{"action":"event"}']) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "ctibridge", "replay", "--pbx", "kazoo", str(capture)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == _expected(FIXTURES / "inbound_answered.jsonl")
    last = len(good) + 2
    assert "line 2 skipped" in result.stderr and f"line {last} skipped" in result.stderr


PBX_CAPTURES = sorted(
    [("asterisk", p) for p in (FIXTURES.parent / "ami").glob("*.ami")]
    + [("freeswitch", p) for p in (FIXTURES.parent / "esl").glob("*.esl")]
)


@pytest.mark.parametrize(
    ("pbx", "capture"), PBX_CAPTURES, ids=[f"{pbx}-{p.stem}" for pbx, p in PBX_CAPTURES]
)
def test_genuine_asterisk_and_freeswitch_captures_replay_to_the_expected_calls(
    pbx: str, capture: Path
) -> None:
    events = asterisk_events if pbx == "asterisk" else freeswitch_events
    errors: list[tuple[int, Exception]] = []
    with capture.open("rb") as stream:
        got = [
            call_record(c)
            for c in replay(events(stream, on_error=lambda n, e: errors.append((n, e))))
        ]
    expected = json.loads(capture.with_suffix(".expected.json").read_text())
    # The expectations were written by hand from the scenario descriptions, without the ids
    # the normaliser picks.
    assert [{**record, "call_id": None} for record in got] == expected
    assert errors == []
