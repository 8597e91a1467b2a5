"""The call-level state machine, as data.

``TRANSITIONS`` is the whole machine: ``(state, trigger) -> next state``. The normaliser
derives the state a call is in from its legs, then walks this table from the state it last
published to the derived one, emitting one call event per step. A derived state that the
table cannot reach from the published one (a late or reordered event that would move the
call backwards) is not published: state only moves forward.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import Final

from ctibridge.callstate.model import CallEventName, CallState

__all__ = ["EVENT_OF", "TRANSITIONS", "Trigger", "path", "render_dot", "steps"]


class Trigger(StrEnum):
    RING = "ring"
    """A callee leg is alerting."""
    ANSWER = "answer"
    """A person answered (a callee agent, or the far end of an outbound call)."""
    HOLD = "hold"
    """A party on the call put it on hold."""
    RESUME = "resume"
    """Nobody on the call holds it any more."""
    END = "end"
    """The last leg of the call is gone."""


TRANSITIONS: dict[tuple[CallState, Trigger], CallState] = {
    (CallState.NEW, Trigger.RING): CallState.RINGING,
    (CallState.NEW, Trigger.ANSWER): CallState.ANSWERED,
    (CallState.NEW, Trigger.END): CallState.ENDED,
    (CallState.RINGING, Trigger.ANSWER): CallState.ANSWERED,
    (CallState.RINGING, Trigger.END): CallState.ENDED,
    (CallState.ANSWERED, Trigger.HOLD): CallState.HELD,
    (CallState.ANSWERED, Trigger.END): CallState.ENDED,
    (CallState.HELD, Trigger.RESUME): CallState.ANSWERED,
    (CallState.HELD, Trigger.END): CallState.ENDED,
}

EVENT_OF: dict[Trigger, CallEventName] = {
    Trigger.RING: CallEventName.RINGING,
    Trigger.ANSWER: CallEventName.ANSWERED,
    Trigger.HOLD: CallEventName.HELD,
    Trigger.RESUME: CallEventName.RESUMED,
    Trigger.END: CallEventName.ENDED,
}


def _shortest(start: CallState, goal: CallState) -> tuple[Trigger, ...] | None:
    queue: deque[tuple[CallState, tuple[Trigger, ...]]] = deque([(start, ())])
    seen = {start}
    while queue:
        state, steps = queue.popleft()
        if state is goal:
            return steps
        for (src, trigger), dst in TRANSITIONS.items():
            if src is state and dst not in seen:
                seen.add(dst)
                queue.append((dst, (*steps, trigger)))
    return None


_PATHS: Final[dict[tuple[CallState, CallState], tuple[Trigger, ...] | None]] = {
    (a, b): _shortest(a, b) for a in CallState for b in CallState
}


_PATHS_FROM: Final[dict[CallState, dict[CallState, tuple[Trigger, ...] | None]]] = {
    a: {b: _PATHS[a, b] for b in CallState} for a in CallState
}


def path(published: CallState, derived: CallState) -> tuple[Trigger, ...] | None:
    """Triggers that take a call from ``published`` to ``derived``; ``None`` if that would
    move it backwards (then the published state stands)."""
    return _PATHS_FROM[published][derived]


def _steps_of(start: CallState, goal: CallState) -> tuple[tuple[CallEventName, CallState], ...]:
    out: list[tuple[CallEventName, CallState]] = []
    state = start
    for trigger in _PATHS[start, goal] or ():
        state = TRANSITIONS[state, trigger]
        out.append((EVENT_OF[trigger], state))
    return tuple(out)


_STEPS: Final[dict[CallState, dict[CallState, tuple[tuple[CallEventName, CallState], ...]]]] = {
    a: {b: _steps_of(a, b) for b in CallState} for a in CallState
}


def steps(published: CallState, derived: CallState) -> tuple[tuple[CallEventName, CallState], ...]:
    """``path`` as the events to emit: (call event, state after it) for each step; empty
    when the derived state is the published one or behind it."""
    return _STEPS[published][derived]


def render_dot() -> str:
    """The machine as a Graphviz digraph (``docs/state-diagram.dot``)."""
    lines = [
        "digraph call_state {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for (src, trigger), dst in TRANSITIONS.items():
        lines.append(f'  {src.value} -> {dst.value} [label="{trigger.value}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
