from __future__ import annotations

from pathlib import Path

from ctibridge.callstate.machine import TRANSITIONS, Trigger, path, render_dot
from ctibridge.callstate.model import CallState

DOCS = Path(__file__).parents[3] / "docs"


def test_paths_only_move_forward() -> None:
    assert path(CallState.NEW, CallState.HELD) == (Trigger.ANSWER, Trigger.HOLD)
    assert path(CallState.HELD, CallState.ANSWERED) == (Trigger.RESUME,)
    assert path(CallState.ANSWERED, CallState.RINGING) is None
    assert path(CallState.ENDED, CallState.ANSWERED) is None
    assert path(CallState.RINGING, CallState.RINGING) == ()


def test_every_state_can_end_and_ended_is_final() -> None:
    for state in CallState:
        if state is not CallState.ENDED:
            assert path(state, CallState.ENDED) is not None
    assert not [key for key in TRANSITIONS if key[0] is CallState.ENDED]


def test_the_committed_diagram_is_generated_from_the_table() -> None:
    assert (DOCS / "state-diagram.dot").read_text() == render_dot()
