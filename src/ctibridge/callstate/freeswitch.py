"""FreeSWITCH ESL events → :class:`ChannelEvent`. Pure (no I/O, no clock); stateful.

Rules (reference notes §3):

- ``leg_id`` = ``Unique-ID``; ``at`` = ``Event-Date-Timestamp`` (µs); ``node`` = the switch
  name; ``event_id`` = ``Core-UUID:Event-Sequence``.
- ``group_key``: the ``Channel-Call-UUID`` a leg was first seen with (a B-leg carries its
  A-leg's); ``Other-Leg-Unique-ID`` and ``Bridge-A/B-Unique-ID`` merge groups, and a merged
  conversation keeps its first key.
- ``party``: a ``sofia/<trunk profile>/`` leg or one with ``variable_sip_gateway_name`` is a
  trunk; a ``sofia/<agent profile>/`` leg is an agent's phone, named by
  ``variable_dialed_user`` (the switch called it), the ``presence_id`` user or the caller/
  callee id — never by the contact user in the channel name. ``loopback/`` legs are skipped.
- ``originator``: ``Call-Direction: inbound`` (the leg came into the switch), or the first
  leg of a conversation the switch originated itself (click-to-dial).
- CHANNEL_CREATE → CREATED; CHANNEL_PROGRESS of a leg the switch placed → RINGING;
  CHANNEL_PROGRESS_MEDIA → EARLY; CHANNEL_ANSWER → ANSWERED; CHANNEL_BRIDGE → BRIDGED for
  both legs; CHANNEL_HOLD/UNHOLD → HELD/UNHELD; CHANNEL_HANGUP_COMPLETE (or CHANNEL_DESTROY,
  whichever comes first) → DESTROYED with ``Hangup-Cause`` and the leg's recordings
  (RECORD_START/STOP, ``record_session``). The ``voicemail`` application marks the leg's
  answer as the PBX's. Our ``ctibridge_req`` (or ``cti_request``) variable → ``origin_tag``.

:meth:`FreeswitchMapper.feed` raises :class:`~ctibridge.errors.FieldError` for an event it
cannot use (no Unique-ID, no time), leaving its state unchanged: log it and go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from ctibridge.callstate.conversations import _close, _Groups, _leg_event, _Recent
from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.errors import FieldError
from ctibridge.protocols.esl import EslEvent

__all__ = ["EVENT_NAMES", "FreeswitchMapper"]

K = LegEventKind

_APPLICATIONS: Final[Mapping[str, str]] = {
    "voicemail": "voicemail",
    "conference": "conference",
    "callcenter": "queue",
    "fifo": "queue",
}
_RECORDERS: Final = frozenset({"record_session"})
_ANSWERED_STATES: Final = frozenset({"ACTIVE", "HELD"})
_DESTROY: Final = frozenset({"CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"})


@dataclass(slots=True)
class _Leg:
    leg_id: str
    key: str
    party: Party
    agent: AgentRef | None
    placed: bool
    """The switch placed this leg (``Call-Direction: outbound``)."""
    originator: bool
    caller_number: str | None = None
    caller_name: str | None = None
    callee_number: str | None = None
    callee_name: str | None = None
    dialed_number: str | None = None
    application: str | None = None
    node: str | None = None
    done: set[LegEventKind] = field(default_factory=set)
    peer: str | None = None
    recordings: list[Recording] = field(default_factory=list)


_Handler = Callable[["FreeswitchMapper", EslEvent, float], list[ChannelEvent]]


class FreeswitchMapper:
    """Folds ESL events of one FreeSWITCH (one tenant) into channel events."""

    def __init__(
        self,
        tenant_id: str,
        *,
        internal_digits: int = 5,
        agent_profiles: Iterable[str] = ("internal",),
        trunk_profiles: Iterable[str] = ("external",),
        origin_vars: Iterable[str] = ("ctibridge_req", "cti_request"),
    ) -> None:
        self.tenant_id = tenant_id
        self._digits = internal_digits
        self._agent_profiles = frozenset(agent_profiles)
        self._trunk_profiles = frozenset(trunk_profiles)
        self._origin_vars = tuple(f"variable_{v}" for v in origin_vars)
        self._reset()

    def _reset(self) -> None:
        self._legs: dict[str, _Leg] = {}
        self._groups = _Groups()
        self._ended = _Recent()

    # -- public API -------------------------------------------------------------------

    def feed(self, event: EslEvent) -> list[ChannelEvent]:
        """The channel events one ESL event means (usually none)."""
        handler = _HANDLERS.get(event.name)
        if handler is None:
            return []
        wanted = _FILTERS.get(event.name)
        if wanted is not None and not wanted(self, event):
            return []
        return handler(self, event, _time(event))

    def snapshot(self, show_channels_json: Mapping[str, Any], at: float) -> list[ChannelEvent]:
        """SNAPSHOT events from ``show channels as json`` taken at ``at``.

        The mapper forgets what it knew and starts again from the listing, except the
        recordings of the legs still listed (the listing does not name them; a leg's
        recordings go out with its hang-up). Legs sharing a ``call_uuid`` are one
        conversation; two of them are taken as bridged to each other.
        """
        recordings = {leg.leg_id: leg.recordings for leg in self._legs.values() if leg.recordings}
        self._reset()
        rows = show_channels_json.get("rows") or []
        if not isinstance(rows, list):
            raise FieldError("show channels: rows is not a list")
        listed = [(leg, row) for row in rows if (leg := self._row_leg(row)) is not None]
        for leg, _row in listed:
            leg.recordings = recordings.get(leg.leg_id, leg.recordings)
        by_group: dict[str, list[str]] = {}
        for leg, _row in listed:
            by_group.setdefault(self._groups.find(leg.key), []).append(leg.leg_id)
        out = []
        for leg, row in listed:
            mates = by_group[self._groups.find(leg.key)]
            peer = next((m for m in mates if m != leg.leg_id), None) if len(mates) == 2 else None
            state = str(row.get("callstate") or "").upper()
            leg.peer = peer
            out.append(
                self._event(
                    leg,
                    K.SNAPSHOT,
                    at,
                    other_leg_id=peer,
                    answered=state in _ANSWERED_STATES,
                    held=state == "HELD",
                )
            )
        return out

    @property
    def live_legs(self) -> int:
        """Legs the mapper is tracking now."""
        return len(self._legs)

    @property
    def live_conversations(self) -> int:
        """Conversations with a live leg (a bounded-memory check)."""
        return self._groups.size

    # -- legs ---------------------------------------------------------------------------

    def _live(self, event: EslEvent) -> _Leg | None:
        """The event's leg (created on first sight), or None for a loopback or ended leg."""
        leg_id = event.channel_id
        if not leg_id:
            raise FieldError(f"ESL {event.name}: no Unique-ID")
        if leg_id in self._ended or _is_loopback(event.get("Channel-Name")):
            return None
        leg = self._legs.get(leg_id)
        if leg is None:
            leg = self._new_leg(event, leg_id)
        self._link(leg, event)
        self._describe(leg, event)
        return leg

    def _new_leg(self, event: EslEvent, leg_id: str) -> _Leg:
        key = event.get("Channel-Call-UUID") or leg_id
        other = event.get("Other-Leg-Unique-ID")
        placed = (event.get("Call-Direction") or "").lower() == "outbound"
        started = key == leg_id and not other
        party, agent = self._identify(event, placed)
        leg = _Leg(leg_id, key, party, agent, placed, not placed or started)
        self._legs[leg_id] = leg
        self._groups.join(key, leg_id)
        return leg

    def _link(self, leg: _Leg, event: EslEvent) -> None:
        groups = self._groups
        for name in ("Channel-Call-UUID", "Other-Leg-Unique-ID"):
            other = event.get(name)
            if other and other != leg.leg_id and other not in self._ended:
                known = self._legs.get(other)
                groups.union(leg.key, known.key if known is not None else other)
        for name in self._origin_vars:
            if tag := (event.get(name) or "").strip():
                groups.tags.setdefault(groups.find(leg.key), tag)
                break

    def _identify(self, event: EslEvent, placed: bool) -> tuple[Party, AgentRef | None]:
        name = event.get("Channel-Name") or ""
        profile = event.get("variable_sofia_profile_name") or _profile(name)
        if event.get("variable_sip_gateway_name") or profile in self._trunk_profiles:
            return Party.TRUNK, None
        agent = self._agent(event, placed)
        if profile in self._agent_profiles or agent is not None:
            return Party.AGENT, agent
        return Party.TRUNK, None

    def _agent(self, event: EslEvent, placed: bool) -> AgentRef | None:
        """Who is on an agent leg: dialled user, presence user, else a short caller/callee id."""
        presence = event.get("variable_presence_id") or event.get("Channel-Presence-ID") or ""
        user, _sep, domain = presence.partition("@")
        named: list[str | None] = [event.get("variable_dialed_user"), user] if placed else [user]
        if not placed:
            named.append(event.get("variable_user_name"))
        number = event.get("Caller-Callee-ID-Number" if placed else "Caller-Caller-ID-Number")
        found: str | None = next((n for n in named if n), None)
        if found is None and number and _is_extension(number, self._digits):
            found = number
        if found is None:
            return None
        realm = event.get("variable_dialed_domain") or domain or event.get("variable_domain_name")
        device = f"{found}@{realm}" if realm else found
        return AgentRef(device_id=device, extension=found if found.isdigit() else None)

    def _describe(self, leg: _Leg, event: EslEvent) -> None:
        """Fill in caller/callee/dialled number; the first value seen stays."""
        if leg.party is Party.AGENT and leg.agent is None:
            leg.agent = self._agent(event, leg.placed)
        ext = leg.agent.extension if leg.agent is not None and leg.placed else None
        leg.caller_number = leg.caller_number or event.get("Caller-Caller-ID-Number") or None
        leg.caller_name = leg.caller_name or event.get("Caller-Caller-ID-Name") or None
        leg.callee_number = leg.callee_number or ext or event.get("Caller-Callee-ID-Number") or None
        leg.callee_name = leg.callee_name or event.get("Caller-Callee-ID-Name") or None
        leg.dialed_number = (
            leg.dialed_number or ext or event.get("Caller-Destination-Number") or None
        )
        leg.node = leg.node or event.get("FreeSWITCH-Switchname") or None

    def _forget(self, leg: _Leg) -> None:
        self._legs.pop(leg.leg_id, None)
        self._groups.leave(leg.key, leg.leg_id)
        self._ended.add(leg.leg_id)

    def _event(
        self,
        leg: _Leg,
        kind: LegEventKind,
        at: float,
        *,
        event_id: str | None = None,
        other_leg_id: str | None = None,
        hangup_cause: str | None = None,
        recordings: tuple[Recording, ...] = (),
        answered: bool = False,
        held: bool = False,
    ) -> ChannelEvent:
        return _leg_event(
            leg,
            self._groups,
            kind,
            at,
            tenant_id=self.tenant_id,
            pbx="freeswitch",
            other_leg_id=other_leg_id,
            hangup_cause=hangup_cause,
            recordings=recordings,
            answered=answered,
            held=held,
            node=leg.node,
            event_id=event_id,
        )

    def _once(
        self, event: EslEvent, at: float, kind: LegEventKind, leg: _Leg | None = None
    ) -> list[ChannelEvent]:
        """``kind`` for the event's leg, the first time only."""
        leg = leg or self._live(event)
        if leg is None or kind in leg.done:
            return []
        leg.done.add(kind)
        return [self._event(leg, kind, at, event_id=_event_id(event))]

    def _row_leg(self, row: Any) -> _Leg | None:
        if not isinstance(row, Mapping) or not row.get("uuid"):
            return None
        fields = {
            "Unique-ID": row.get("uuid"),
            "Channel-Name": row.get("name"),
            "Channel-Call-UUID": row.get("call_uuid"),
            "Call-Direction": row.get("direction"),
            "Channel-Presence-ID": row.get("presence_id"),
            "Caller-Caller-ID-Number": row.get("cid_num"),
            "Caller-Caller-ID-Name": row.get("cid_name"),
            "Caller-Callee-ID-Number": row.get("callee_num"),
            "Caller-Callee-ID-Name": row.get("callee_name"),
            "Caller-Destination-Number": row.get("dest"),
            "FreeSWITCH-Switchname": row.get("hostname"),
        }
        headers = tuple((k, str(v)) for k, v in fields.items() if v not in (None, ""))
        leg = self._live(EslEvent(headers))
        if leg is not None:
            leg.application = _APPLICATIONS.get(str(row.get("application") or "").lower())
        return leg

    # -- handlers -----------------------------------------------------------------------

    def _on_create(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        return self._once(event, at, K.CREATED)

    def _on_progress(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        leg = self._live(event)
        if leg is None or not leg.placed or K.ANSWERED in leg.done:
            return []
        return self._once(event, at, K.RINGING, leg)

    def _on_early(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        return self._once(event, at, K.EARLY)

    def _on_answer(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        return self._once(event, at, K.ANSWERED)

    def _on_bridge(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        leg = self._live(event)
        a_id = event.get("Bridge-A-Unique-ID") or event.channel_id
        b_id = event.get("Bridge-B-Unique-ID") or event.get("Other-Leg-Unique-ID")
        a, b = self._legs.get(a_id or ""), self._legs.get(b_id or "")
        if leg is None or a is None or b is None or a is b:
            return []
        self._groups.union(a.key, b.key)
        out = []
        for one, other in ((a, b), (b, a)):
            if one.peer != other.leg_id:
                one.peer = other.leg_id
                out.append(
                    self._event(
                        one, K.BRIDGED, at, event_id=_event_id(event), other_leg_id=other.leg_id
                    )
                )
        return out

    def _on_unbridge(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        for name in ("Bridge-A-Unique-ID", "Bridge-B-Unique-ID"):
            if (leg := self._legs.get(event.get(name) or "")) is not None:
                leg.peer = None
        return []

    def _on_hold(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        leg = self._live(event)
        if leg is None:
            return []
        kind = K.HELD if event.name == "CHANNEL_HOLD" else K.UNHELD
        return [self._event(leg, kind, at, event_id=_event_id(event))]

    def _on_destroy(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        leg = self._live(event)
        if leg is None:
            return []
        cause = (event.get("Hangup-Cause") or "").upper() or None
        recordings = _close(leg.recordings, at)
        destroyed = self._event(
            leg,
            K.DESTROYED,
            at,
            event_id=_event_id(event),
            hangup_cause=cause,
            recordings=recordings,
        )
        self._forget(leg)
        return [destroyed]

    def _on_record(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        leg = self._live(event)
        path = (event.get("Record-File-Path") or "").strip()
        if leg is None or not path:
            return []
        if event.name == "RECORD_STOP" and all(r.ref != path for r in leg.recordings):
            leg.recordings.append(_stopped(Recording(ref=path), event, at))  # missed the start
        elif event.name == "RECORD_START":
            _add_recording(leg, path, at)
        else:
            leg.recordings = [
                _stopped(r, event, at) if r.ref == path else r for r in leg.recordings
            ]
        return []

    def _wants_app(self, event: EslEvent) -> bool:
        app = (event.get("Application") or "").lower()
        return app in _APPLICATIONS or app in _RECORDERS

    def _on_execute(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        leg = self._live(event)
        app = (event.get("Application") or "").lower()
        if leg is None:
            return []
        if app in _RECORDERS:
            path = (event.get("Application-Data") or "").split(" ", 1)[0].strip()
            if path:
                _add_recording(leg, path, at)
            return []
        if leg.application == _APPLICATIONS[app]:
            return []
        leg.application = _APPLICATIONS[app]
        if K.ANSWERED not in leg.done:
            return []
        return [self._event(leg, K.ANSWERED, at, event_id=_event_id(event))]

    def _on_update(self, event: EslEvent, at: float) -> list[ChannelEvent]:
        self._live(event)
        return []


_HANDLERS: Final[Mapping[str, _Handler]] = {
    "CHANNEL_CREATE": FreeswitchMapper._on_create,
    "CHANNEL_ORIGINATE": FreeswitchMapper._on_update,
    "CHANNEL_PROGRESS": FreeswitchMapper._on_progress,
    "CHANNEL_PROGRESS_MEDIA": FreeswitchMapper._on_early,
    "CHANNEL_ANSWER": FreeswitchMapper._on_answer,
    "CHANNEL_BRIDGE": FreeswitchMapper._on_bridge,
    "CHANNEL_UNBRIDGE": FreeswitchMapper._on_unbridge,
    "CHANNEL_HOLD": FreeswitchMapper._on_hold,
    "CHANNEL_UNHOLD": FreeswitchMapper._on_hold,
    "CHANNEL_HANGUP_COMPLETE": FreeswitchMapper._on_destroy,
    "CHANNEL_DESTROY": FreeswitchMapper._on_destroy,
    "CHANNEL_EXECUTE": FreeswitchMapper._on_execute,
    "RECORD_START": FreeswitchMapper._on_record,
    "RECORD_STOP": FreeswitchMapper._on_record,
}
"""Every event name the mapper reads; HEARTBEAT, RE_SCHEDULE, PRESENCE_IN, CODEC, API,
CUSTOM (sofia::*), CHANNEL_STATE... are skipped with one dict lookup."""

EVENT_NAMES: Final = frozenset(_HANDLERS)
"""The event names the mapper reads (subscribe to these; skip the rest before decoding)."""

_FILTERS: Final[Mapping[str, Callable[[FreeswitchMapper, EslEvent], bool]]] = {
    "CHANNEL_EXECUTE": FreeswitchMapper._wants_app,
}


def _time(event: EslEvent) -> float:
    raw = (event.get("Event-Date-Timestamp") or "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20):
        raise FieldError(f"ESL {event.name}: bad Event-Date-Timestamp {raw[:30]!r}")
    return int(raw) / 1_000_000


def _event_id(event: EslEvent) -> str | None:
    core, seq = event.get("Core-UUID"), event.get("Event-Sequence")
    return f"{core}:{seq}" if core and seq else None


def _profile(channel_name: str) -> str:
    """``sofia/internal/1001@host`` → ``internal``."""
    tech, _sep, rest = channel_name.partition("/")
    return rest.partition("/")[0] if tech == "sofia" else ""


def _is_loopback(channel_name: str | None) -> bool:
    return bool(channel_name) and str(channel_name).startswith("loopback/")


def _is_extension(value: str, digits: int) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= digits


def _add_recording(leg: _Leg, ref: str, at: float) -> None:
    if all(r.ref != ref for r in leg.recordings):
        leg.recordings.append(Recording(ref=ref, started_at=at))


def _stopped(recording: Recording, event: EslEvent, at: float) -> Recording:
    raw = (event.get("variable_record_ms") or "").strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return replace(recording, duration_seconds=int(raw) / 1000)
    return _close([recording], at)[0]
