"""Writing a scenario: where and when it happens (:class:`ScenarioContext`), what it yields
(:class:`Step`), and the builder that stamps each leg's events in time order."""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from ctibridge.demo.directory import DEMO, Carrier

__all__ = ["GREG_OFFSET", "ScenarioContext", "Step", "greg_from_unix", "total_seconds"]

GREG_OFFSET = 62_167_219_200
"""Kazoo (Gregorian) seconds minus unix seconds."""

_ROUTE_VARS = ("account_id", "bridge_id", "call_interaction_id", "application_name")
"""Channel vars the route lookup sets: missing from a carrier leg's early CHANNEL_CREATE."""
_SPACING = 0.07
"""Sub-second gap between events of the same second."""
_SIP_CODES = {
    "NORMAL_CLEARING": "sip:200",
    "BLIND_TRANSFER": "sip:200",
    "ATTENDED_TRANSFER": "sip:200",
    "ORIGINATOR_CANCEL": "sip:487",
    "LOSE_RACE": "sip:487",
    "NO_ANSWER": "sip:480",
    "USER_BUSY": "sip:486",
}


def greg_from_unix(unix: float) -> int:
    """Whole Gregorian seconds (Kazoo's clock) for a unix time."""
    return int(unix) + GREG_OFFSET


@dataclass(frozen=True, slots=True)
class Step:
    delay: float
    """Seconds after the previous step (the first: after the scenario starts)."""
    data: dict[str, Any]
    """The blackhole ``data`` of one call event, ``event_name`` included."""


@dataclass(frozen=True)
class ScenarioContext:
    """Where and when a scenario happens; ``rng`` makes every id."""

    account: str
    realm: str
    start_greg: int
    rng: random.Random
    media_server: str = DEMO.media_servers[0]
    carrier: Carrier = DEMO.carrier
    account_name: str = DEMO.name
    route_vars_on_create: bool = True
    """False: a carrier leg's CHANNEL_CREATE comes before routing, so it lacks the account,
    bridge and interaction ids (as Kazoo sends it when the create races the route lookup)."""


@dataclass(slots=True)
class _Leg:
    """One channel while a scenario is being written (private, mutable builder state)."""

    call_id: str
    direction: str
    caller: tuple[str, str]
    callee: tuple[str, str | None]
    request: str
    sender: str
    presence_id: str | None
    ccv: dict[str, str]
    node: str
    cav: dict[str, str] = field(default_factory=dict)
    other: str | None = None
    created: int = 0
    rang_from: int | None = None
    answered: int | None = None
    recordings: list[str] = field(default_factory=list)


class _Script:
    """Collects events in time order and turns them into steps."""

    def __init__(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self._events: list[tuple[float, dict[str, Any]]] = []
        self._legs: dict[str, _Leg] = {}
        self._second = 0
        self._in_second = 0

    # ids -------------------------------------------------------------------------------
    def interaction_id(self, t: int) -> str:
        return f"{self.ctx.start_greg + t}-{self.ctx.rng.getrandbits(32):08x}"

    def switch_uuid(self) -> str:
        return str(uuid.UUID(int=self.ctx.rng.getrandbits(128), version=4))

    def softphone_call_id(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        return "".join(self.ctx.rng.choice(alphabet) for _ in range(20))

    def carrier_call_id(self) -> str:
        return f"{self.ctx.rng.getrandbits(96):024x}@{self.ctx.carrier.gateway}"

    def quickcall_id(self) -> str:
        return f"{self.ctx.rng.getrandbits(144):036x}-quickcall"

    # events ----------------------------------------------------------------------------
    def create(self, t: int, leg: _Leg) -> None:
        leg.created = t
        self._legs[leg.call_id] = leg
        if leg.direction == "outbound":
            leg.rang_from = t
            peer = self._legs.get(leg.other or "")
            if peer is not None and peer.rang_from is None:
                peer.rang_from = t
        self._emit(t, "CHANNEL_CREATE", leg)

    def answer(self, t: int, leg: _Leg, *, early: bool = False) -> None:
        if not early:
            leg.answered = t
        self._emit(t, "CHANNEL_ANSWER", leg, disposition="EARLY MEDIA" if early else "ANSWER")

    def bridge(self, t: int, a_leg: _Leg, b_leg: _Leg) -> None:
        a_leg.other, b_leg.other = b_leg.call_id, a_leg.call_id
        ids = {"bridge_a_unique_id": a_leg.call_id, "bridge_b_unique_id": b_leg.call_id}
        self._emit(t, "CHANNEL_BRIDGE", a_leg, **ids)

    def hold(self, t: int, leg: _Leg, *, on: bool = True) -> None:
        self._emit(t, "CHANNEL_HOLD" if on else "CHANNEL_UNHOLD", leg)

    def destroy(self, t: int, leg: _Leg, cause: str, *, moving: bool = False) -> None:
        extra: dict[str, Any] = {"hangup_cause": cause}
        if moving:
            extra["channel_moving"] = True
        else:
            extra["hangup_code"] = _SIP_CODES[cause]
        ring_end = leg.answered if leg.answered is not None else t
        extra.update(
            duration_seconds=t - leg.created,
            billing_seconds=0 if leg.answered is None else t - leg.answered,
            ringing_seconds=0 if leg.rang_from is None else max(0, ring_end - leg.rang_from),
            media_recordings=list(leg.recordings),
        )
        self._emit(t, "CHANNEL_DESTROY", leg, **extra)

    def steps(self) -> list[Step]:
        steps: list[Step] = []
        previous = 0.0
        for at, data in self._events:
            steps.append(Step(delay=round(at - previous, 6), data=data))
            previous = at
        return steps

    def _emit(self, t: int, name: str, leg: _Leg, **extra: Any) -> None:
        at = self._stamp(t)
        unix_us = round((self.ctx.start_greg - GREG_OFFSET + at) * 1_000_000)
        data: dict[str, Any] = {
            "event_name": name,
            "event_category": "call_event",
            "call_id": leg.call_id,
            "msg_id": str(unix_us),
            "call_direction": leg.direction,
            "caller_id_number": leg.caller[0],
            "caller_id_name": leg.caller[1],
            "callee_id_number": leg.callee[0],
        }
        if leg.callee[1] is not None:
            data["callee_id_name"] = leg.callee[1]
        data.update(request=leg.request, to=leg.request, **{"from": leg.sender})
        if leg.presence_id is not None:
            data["presence_id"] = leg.presence_id
        data.update(timestamp=self.ctx.start_greg + t, media_server=leg.node)
        if leg.other is not None:
            data["other_leg_call_id"] = leg.other
        data["custom_channel_vars"] = self._ccv(name, leg)
        data["custom_application_vars"] = dict(leg.cav)
        data.update(extra)
        self._events.append((at, data))

    def _ccv(self, name: str, leg: _Leg) -> dict[str, str]:
        ccv = dict(leg.ccv)
        routed = self.ctx.route_vars_on_create or name != "CHANNEL_CREATE"
        if not routed and ccv.get("resource_type") == "offnet-origination":
            for key in _ROUTE_VARS:
                ccv.pop(key, None)
        return ccv

    def _stamp(self, t: int) -> float:
        if t < self._second:
            raise ValueError(f"event at second {t} written after second {self._second}")
        if t > self._second:
            self._second, self._in_second = t, 0
        if self._in_second >= 12:
            raise ValueError(f"too many events in second {t}")
        offset = 0.04 + _SPACING * self._in_second + self.ctx.rng.random() * 0.02
        self._in_second += 1
        return t + offset


def total_seconds(steps: list[Step]) -> float:
    """How long a scenario lasts (start to last event)."""
    return sum(step.delay for step in steps)
