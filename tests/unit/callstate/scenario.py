"""A tiny builder for channel-event scenarios, PBX-independent (used by normaliser tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording

TENANT = "acc1"
K = LegEventKind


def agent(ext: str) -> AgentRef:
    return AgentRef(user_id=f"user-{ext}", device_id=f"dev-{ext}", extension=ext)


@dataclass
class Script:
    """Write a scenario leg by leg; ``events`` is the arrival order."""

    group: str | None = "I1"
    events: list[ChannelEvent] = field(default_factory=list)
    _n: int = 0

    def leg(
        self,
        leg_id: str,
        *,
        party: Party,
        originator: bool = False,
        ext: str | None = None,
        **fields: Any,
    ) -> LegWriter:
        return LegWriter(self, leg_id, party, originator, agent(ext) if ext else None, fields)

    def add(self, event: ChannelEvent) -> None:
        self._n += 1
        self.events.append(event)


@dataclass
class LegWriter:
    script: Script
    leg_id: str
    party: Party
    originator: bool
    agent: AgentRef | None
    fields: dict[str, Any]
    group: str | None = None

    def __post_init__(self) -> None:
        self.group = self.fields.pop("group", self.script.group)

    def emit(self, kind: LegEventKind, at: float, **extra: Any) -> LegWriter:
        data = dict(self.fields)
        data.update(extra)
        self.script.add(
            ChannelEvent(
                kind=kind,
                tenant_id=TENANT,
                leg_id=self.leg_id,
                at=at,
                event_id=f"{self.leg_id}-{kind.value}-{at}",
                group_key=self.group,
                originator=self.originator,
                party=self.party,
                agent=self.agent,
                **data,
            )
        )
        return self

    def create(self, at: float, **extra: Any) -> LegWriter:
        return self.emit(K.CREATED, at, **extra)

    def answer(self, at: float) -> LegWriter:
        return self.emit(K.ANSWERED, at)

    def early(self, at: float) -> LegWriter:
        return self.emit(K.EARLY, at)

    def bridge(self, at: float, other: str) -> LegWriter:
        return self.emit(K.BRIDGED, at, other_leg_id=other)

    def hold(self, at: float) -> LegWriter:
        return self.emit(K.HELD, at)

    def unhold(self, at: float) -> LegWriter:
        return self.emit(K.UNHELD, at)

    def destroy(self, at: float, cause: str = "NORMAL_CLEARING", **extra: Any) -> LegWriter:
        return self.emit(K.DESTROYED, at, hangup_cause=cause, **extra)


def rec(ref: str) -> Recording:
    return Recording(ref)
