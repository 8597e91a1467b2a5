"""Asterisk AMI events → :class:`ChannelEvent`. Pure (no I/O, no clock); stateful.

Rules (see ``docs`` and the reference notes, §2):

- ``leg_id`` = ``Uniqueid``; ``at`` = the ``Timestamp`` header (``timestampevents=yes``).
- ``group_key``: the ``Linkedid`` a leg was first seen with. Groups that come to share a
  channel (a channel whose Linkedid changes, a bridge between two groups, a pickup) are
  merged, and a merged conversation keeps its *first* key.
- ``party``: a ``PJSIP/``, ``SIP/`` or ``IAX2/`` endpoint whose name is at most
  ``internal_digits`` digits is an agent's phone (or ``agent_pattern`` matches the device);
  any other endpoint is a trunk (and ``trunk_pattern`` always wins). ``Local/`` halves and
  other plumbing channels produce no events: a bridge through them is seen through.
- ``originator``: a leg whose Uniqueid equals its Linkedid when it appears, or the first Dial
  caller of a conversation that has no originator yet.
- Newchannel → CREATED; DialBegin / Newstate Ringing → RINGING (once); Newstate Up →
  ANSWERED (once); a two-party bridge → BRIDGED for both legs; Hold/Unhold → HELD/UNHELD;
  Hangup → DESTROYED with the Q.850 cause name and the leg's recordings. A successful blind
  or attended transfer, or a pickup, names the cause of the legs it replaced
  (``BLIND_TRANSFER``, ``ATTENDED_TRANSFER``, ``PICKED_OFF``), as FreeSWITCH does.
- Caller/callee: on a leg coming *into* the PBX (created in state Ring) the caller is
  ``CallerID`` and the callee the ``ConnectedLine``; on a leg the PBX placed (state Down:
  Dial, Originate) it is the other way round, so the phone of a click-to-dial shows as
  caller the party it gets connected to. The first value seen stays. ``dialed_number`` is
  the first real ``Exten`` of an incoming leg, or the number in the ``DialString`` that
  created an outgoing one.
- ``VoiceMail`` (or ``Queue``, ``ConfBridge``) in the dialplan marks the leg: its answer is
  the PBX's (``application``). ``MIXMONITOR_FILENAME`` → a recording on that leg;
  our ``CTIBRIDGE_REQ`` (or ``CTI_REQUEST``) variable → ``origin_tag`` of the conversation.

:meth:`AsteriskMapper.feed` raises :class:`~ctibridge.errors.FieldError` for an event it
cannot use (no Uniqueid, no time...), leaving its state unchanged: log it and go on.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from ctibridge.callstate.events import AgentRef, ChannelEvent, LegEventKind, Party, Recording
from ctibridge.errors import FieldError
from ctibridge.protocols.ami import AmiMessage

__all__ = ["EVENT_NAMES", "Q850_CAUSES", "AsteriskMapper", "cause_name"]

K = LegEventKind

Q850_CAUSES: Final[Mapping[int, str]] = {
    0: "NONE", 1: "UNALLOCATED_NUMBER", 2: "NO_ROUTE_TRANSIT_NET", 3: "NO_ROUTE_DESTINATION",
    6: "CHANNEL_UNACCEPTABLE", 7: "CALL_AWARDED_DELIVERED", 16: "NORMAL_CLEARING",
    17: "USER_BUSY", 18: "NO_USER_RESPONSE", 19: "NO_ANSWER", 20: "SUBSCRIBER_ABSENT",
    21: "CALL_REJECTED", 22: "NUMBER_CHANGED", 23: "REDIRECTION_TO_NEW_DESTINATION",
    25: "EXCHANGE_ROUTING_ERROR", 26: "ANSWERED_ELSEWHERE", 27: "DESTINATION_OUT_OF_ORDER",
    28: "INVALID_NUMBER_FORMAT", 29: "FACILITY_REJECTED", 30: "RESPONSE_TO_STATUS_ENQUIRY",
    31: "NORMAL_UNSPECIFIED", 34: "NORMAL_CIRCUIT_CONGESTION", 38: "NETWORK_OUT_OF_ORDER",
    41: "NORMAL_TEMPORARY_FAILURE", 42: "SWITCH_CONGESTION", 43: "ACCESS_INFO_DISCARDED",
    44: "REQUESTED_CHAN_UNAVAIL", 50: "FACILITY_NOT_SUBSCRIBED", 52: "OUTGOING_CALL_BARRED",
    54: "INCOMING_CALL_BARRED", 57: "BEARERCAPABILITY_NOTAUTH",
    58: "BEARERCAPABILITY_NOTAVAIL", 65: "BEARERCAPABILITY_NOTIMPL",
    66: "CHAN_NOT_IMPLEMENTED", 69: "FACILITY_NOT_IMPLEMENTED", 81: "INVALID_CALL_REFERENCE",
    88: "INCOMPATIBLE_DESTINATION", 95: "INVALID_MSG_UNSPECIFIED", 96: "MANDATORY_IE_MISSING",
    97: "MESSAGE_TYPE_NONEXIST", 98: "WRONG_MESSAGE", 99: "IE_NONEXIST",
    100: "INVALID_IE_CONTENTS", 101: "WRONG_CALL_STATE", 102: "RECOVERY_ON_TIMER_EXPIRE",
    103: "MANDATORY_IE_LENGTH_ERROR", 111: "PROTOCOL_ERROR", 127: "INTERWORKING",
}  # fmt: skip
"""Q.850 cause numbers as Asterisk reports them → the cause names ChannelEvent uses.
26 (answered elsewhere) is the losing fork of a ring group, like FreeSWITCH's LOSE_RACE."""

_AGENT_TECHS: Final = frozenset({"PJSIP", "SIP", "IAX2"})
_PLUMBING: Final = frozenset({"Local", "Announcer", "CBAnn", "CBRec", "Snoop", "Recorder"})
_APPLICATIONS: Final[Mapping[str, str]] = {
    "voicemail": "voicemail",
    "voicemailmain": "voicemail",
    "queue": "queue",
    "confbridge": "conference",
    "meetme": "conference",
}
_NO_VALUE: Final = frozenset({"", "<unknown>"})
_RECORDING_VAR: Final = "MIXMONITOR_FILENAME"
_RECENT: Final = 4096


def cause_name(cause: str | None) -> str | None:
    """``"16"`` → ``NORMAL_CLEARING``; an unknown number → ``CAUSE_<n>``; junk → None."""
    text = (cause or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        return None
    number = int(text)
    return Q850_CAUSES.get(number, f"CAUSE_{number}")


def _text(value: str | None) -> str | None:
    """A caller-id style value, or None for ``<unknown>``/empty."""
    if value is None:
        return None
    value = value.strip()
    return None if value in _NO_VALUE else value


def _exten(value: str | None) -> str | None:
    """A dialled extension, or None for the ``s`` (start) extension."""
    text = _text(value)
    return None if text == "s" else text


# -- shared helpers (FreeSWITCH uses them too) --------------------------------------------------


class _Groups:
    """Union-find over conversation keys. The oldest key names a merged set; each set
    carries its live legs, an origin tag and whether it has an originator."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._order: dict[str, int] = {}
        self._keys: dict[str, list[str]] = {}
        self._legs: dict[str, set[str]] = {}
        self.tags: dict[str, str] = {}
        self.originated: set[str] = set()
        self._counter = itertools.count()

    def find(self, key: str) -> str:
        parent = self._parent
        if key not in parent:
            parent[key], self._order[key] = key, next(self._counter)
            self._keys[key], self._legs[key] = [key], set()
            return key
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        keep, gone = (ra, rb) if self._order[ra] < self._order[rb] else (rb, ra)
        self._parent[gone] = keep
        self._keys[keep] += self._keys.pop(gone)
        self._legs[keep] |= self._legs.pop(gone)
        if gone in self.tags:
            self.tags.setdefault(keep, self.tags.pop(gone))
        if gone in self.originated:
            self.originated.discard(gone)
            self.originated.add(keep)
        return keep

    def join(self, key: str, leg_id: str) -> None:
        self._legs[self.find(key)].add(leg_id)

    def leave(self, key: str, leg_id: str) -> None:
        """The leg is gone; a set with no live leg left is forgotten."""
        root = self.find(key)
        legs = self._legs[root]
        legs.discard(leg_id)
        if legs:
            return
        for k in self._keys.pop(root):
            del self._parent[k], self._order[k]
        del self._legs[root]
        self.tags.pop(root, None)
        self.originated.discard(root)

    @property
    def size(self) -> int:
        """Live conversations (sets with a live leg)."""
        return len(self._legs)


class _Recent:
    """A bounded set of leg ids that ended (late events for them are dropped)."""

    def __init__(self, size: int = _RECENT) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, item: str) -> None:
        self._items[item] = None
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._items


def _close(recordings: Iterable[Recording], at: float) -> tuple[Recording, ...]:
    """Recordings still running when their leg ends run until then."""
    return tuple(
        r
        if r.duration_seconds is not None or r.started_at is None
        else replace(r, duration_seconds=max(0.0, at - r.started_at))
        for r in recordings
    )


class _Bridges:
    """Which channel is in which bridge (one at a time), and who is across a two-party one."""

    def __init__(self) -> None:
        self._members: dict[str, list[str]] = {}
        self._of: dict[str, str] = {}

    def members_of(self, bridge: str) -> list[str]:
        return list(self._members.get(bridge, ()))

    def enter(self, leg_id: str, bridge: str) -> None:
        old = self._of.get(leg_id)
        if old is not None and old != bridge:
            self._drop(leg_id, old)
        members = self._members.setdefault(bridge, [])
        if leg_id not in members:
            members.append(leg_id)
        self._of[leg_id] = bridge

    def leave(self, leg_id: str, bridge: str | None = None) -> bool:
        """True when the leg left the bridge it was in (it is unbridged now)."""
        bridge = bridge or self._of.get(leg_id)
        if bridge is None:
            return False
        self._drop(leg_id, bridge)
        if self._of.get(leg_id) != bridge:
            return False
        del self._of[leg_id]
        return True

    def _drop(self, leg_id: str, bridge: str) -> None:
        members = self._members.get(bridge)
        if members is not None and leg_id in members:
            members.remove(leg_id)
            if not members:
                del self._members[bridge]

    def far_side(
        self, leg_id: str, legs: Mapping[str, _Leg], partner: Callable[[_Leg], str | None]
    ) -> str | None:
        """The real leg across ``leg_id``'s two-party bridge, through Local pairs (4 hops)."""
        seen, current = {leg_id}, leg_id
        for _ in range(4):
            others = [m for m in self._members.get(self._of.get(current, ""), ()) if m != current]
            if len(others) != 1 or others[0] in seen or others[0] not in legs:
                return None
            other = legs[others[0]]
            if not other.plumbing:
                return other.leg_id
            half = partner(other)
            if half is None or half in seen:
                return None
            seen |= {other.leg_id, half}
            current = half
        return None


# -- per-leg state ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Leg:
    leg_id: str
    channel: str
    key: str
    party: Party
    agent: AgentRef | None
    plumbing: bool
    incoming: bool
    originator: bool = False
    caller_number: str | None = None
    caller_name: str | None = None
    callee_number: str | None = None
    callee_name: str | None = None
    dialed_number: str | None = None
    application: str | None = None
    up: bool = False
    rang: bool = False
    cause: str | None = None
    """A cause that names what really ended the leg (transfer, pickup)."""
    peer: str | None = None
    recordings: list[Recording] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    party: Party
    agent: AgentRef | None
    plumbing: bool


_Handler = Callable[["AsteriskMapper", AmiMessage, float], list[ChannelEvent]]


class AsteriskMapper:
    """Folds AMI messages of one Asterisk (one tenant) into channel events."""

    def __init__(
        self,
        tenant_id: str,
        *,
        internal_digits: int = 5,
        agent_pattern: str | re.Pattern[str] | None = None,
        trunk_pattern: str | re.Pattern[str] | None = None,
        origin_vars: Iterable[str] = ("CTIBRIDGE_REQ", "CTI_REQUEST"),
    ) -> None:
        self.tenant_id = tenant_id
        self._digits = internal_digits
        self._agent_re = re.compile(agent_pattern) if agent_pattern else None
        self._trunk_re = re.compile(trunk_pattern) if trunk_pattern else None
        self._origin_vars = frozenset(v.upper() for v in origin_vars)
        self._reset()

    def _reset(self) -> None:
        self._legs: dict[str, _Leg] = {}
        self._by_channel: dict[str, str] = {}
        self._groups = _Groups()
        self._ended = _Recent()
        self._bridges = _Bridges()

    # -- public API -------------------------------------------------------------------

    def feed(self, msg: AmiMessage, *, received_at: float | None = None) -> list[ChannelEvent]:
        """The channel events one AMI message means (usually none).

        ``received_at`` is used only when the message has no ``Timestamp`` header.
        """
        handler = _HANDLERS.get(msg.name) if msg.is_event else None
        if handler is None:
            return []
        wanted = _FILTERS.get(msg.name)
        if wanted is not None and not wanted(self, msg):
            return []
        return handler(self, msg, _time(msg, received_at))

    def snapshot(self, core_show_channels: list[AmiMessage], at: float) -> list[ChannelEvent]:
        """SNAPSHOT events from a ``CoreShowChannels`` listing taken at ``at``.

        The mapper forgets what it knew and starts again from the listing.
        """
        self._reset()
        listed: list[_Leg] = []
        for item in core_show_channels:
            if item.name != "CoreShowChannel" or not _has_leg(item, ""):
                continue
            leg = self._leg(item, "", at)
            listed.append(leg)
            leg.up = (item.get("ChannelStateDesc") or "").lower() == "up"
            leg.application = _APPLICATIONS.get((item.get("Application") or "").lower())
            if bridge := item.get("BridgeId"):
                self._bridges.enter(leg.leg_id, bridge)
        for leg in listed:
            if (peer := self._resolve(leg.leg_id)) is not None:
                self._groups.union(leg.key, self._legs[peer].key)
                leg.peer = peer
        return [
            self._event(leg, K.SNAPSHOT, at, answered=leg.up, other_leg_id=leg.peer)
            for leg in listed
            if not leg.plumbing
        ]

    @property
    def live_legs(self) -> int:
        """Legs (plumbing included) the mapper is tracking now."""
        return len(self._legs)

    @property
    def live_conversations(self) -> int:
        """Conversations with a live leg (a bounded-memory check)."""
        return self._groups.size

    # -- legs ---------------------------------------------------------------------------

    def _leg(self, msg: AmiMessage, prefix: str, at: float) -> _Leg:
        """The leg a message's (prefixed) channel snapshot names, created on first sight."""
        uniqueid = msg.get(prefix + "Uniqueid") or ""
        linkedid = msg.get(prefix + "Linkedid") or uniqueid
        leg = self._legs.get(uniqueid)
        if leg is None:
            state = msg.get(prefix + "ChannelStateDesc") if msg.name == "Newchannel" else None
            leg = self._new_leg(uniqueid, msg.get(prefix + "Channel") or "", linkedid, state)
        elif linkedid != leg.key:
            self._groups.union(leg.key, linkedid)
        self._describe(leg, msg, prefix)
        if msg.get(prefix + "ChanVariable") is not None:
            channel_vars = {
                _var_name(k): v for k, v in msg.variables(prefix + "ChanVariable").items()
            }
            self._variables(leg, channel_vars, at)
        return leg

    def _new_leg(self, uniqueid: str, channel: str, linkedid: str, state: str | None) -> _Leg:
        """A new leg. Asterisk creates a channel that calls *in* in state Ring and one it
        places (Dial, Originate) in state Down; seen later, Uniqueid == Linkedid decides."""
        end = self._endpoint(channel)
        first = uniqueid == linkedid
        incoming = state.lower() == "ring" if state else first
        leg = _Leg(uniqueid, channel, linkedid, end.party, end.agent, end.plumbing, incoming)
        self._legs[uniqueid] = leg
        self._by_channel[channel] = uniqueid
        self._groups.join(linkedid, uniqueid)
        if first and not leg.plumbing:
            self._mark_originator(leg)
        return leg

    def _mark_originator(self, leg: _Leg) -> None:
        leg.originator = True
        self._groups.originated.add(self._groups.find(leg.key))

    def _endpoint(self, channel: str) -> _Endpoint:
        tech, _sep, rest = channel.partition("/")
        if tech in _PLUMBING:
            return _Endpoint(Party.UNKNOWN, None, True)
        endpoint = rest.rpartition("-")[0] or rest
        device = f"{tech}/{endpoint}"
        if self._trunk_re is not None and self._trunk_re.search(device):
            return _Endpoint(Party.TRUNK, None, False)
        if tech in _AGENT_TECHS and _is_extension(endpoint, self._digits):
            return _Endpoint(Party.AGENT, AgentRef(device_id=device, extension=endpoint), False)
        match = self._agent_re.fullmatch(device) if self._agent_re is not None else None
        if match is not None:
            ext = match.groupdict().get("ext") or endpoint
            return _Endpoint(Party.AGENT, AgentRef(device_id=device, extension=ext), False)
        return _Endpoint(Party.TRUNK, None, False)

    def _describe(self, leg: _Leg, msg: AmiMessage, prefix: str) -> None:
        """Fill in caller/callee/dialled number; the first value seen stays."""
        own = (_text(msg.get(prefix + "CallerIDNum")), _text(msg.get(prefix + "CallerIDName")))
        other = (
            _text(msg.get(prefix + "ConnectedLineNum")),
            _text(msg.get(prefix + "ConnectedLineName")),
        )
        caller, callee = (own, other) if leg.incoming else (other, own)
        if not leg.incoming and leg.agent is not None:
            # An agent's phone "connected" to itself says nothing about the other party.
            caller = (
                None if caller[0] == leg.agent.extension else caller[0],
                None if caller[1] == callee[1] else caller[1],
            )
        leg.caller_number = leg.caller_number or caller[0]
        leg.caller_name = leg.caller_name or caller[1]
        leg.callee_number = leg.callee_number or callee[0]
        leg.callee_name = leg.callee_name or callee[1]
        if leg.incoming and leg.dialed_number is None:
            leg.dialed_number = _exten(msg.get(prefix + "Exten"))

    def _forget(self, leg: _Leg) -> None:
        self._leave(leg.leg_id)
        self._legs.pop(leg.leg_id, None)
        if self._by_channel.get(leg.channel) == leg.leg_id:
            del self._by_channel[leg.channel]
        self._groups.leave(leg.key, leg.leg_id)
        self._ended.add(leg.leg_id)

    def _event(
        self,
        leg: _Leg,
        kind: LegEventKind,
        at: float,
        *,
        other_leg_id: str | None = None,
        hangup_cause: str | None = None,
        recordings: tuple[Recording, ...] = (),
        answered: bool = False,
    ) -> ChannelEvent:
        root = self._groups.find(leg.key)
        return ChannelEvent(
            kind=kind,
            tenant_id=self.tenant_id,
            leg_id=leg.leg_id,
            at=at,
            pbx="asterisk",
            group_key=root,
            originator=leg.originator,
            party=leg.party,
            agent=leg.agent,
            caller_number=leg.caller_number,
            caller_name=leg.caller_name,
            callee_number=leg.callee_number,
            callee_name=leg.callee_name,
            dialed_number=leg.dialed_number,
            origin_tag=self._groups.tags.get(root),
            application=leg.application,
            other_leg_id=other_leg_id,
            hangup_cause=hangup_cause,
            recordings=recordings,
            answered=answered,
        )

    def _live(self, msg: AmiMessage, at: float, prefix: str = "") -> _Leg | None:
        """The message's leg, unless it already ended (a late event); FieldError if none."""
        if not _has_leg(msg, prefix):
            raise FieldError(f"AMI {msg.name}: no {prefix}Uniqueid or {prefix}Channel")
        if msg.get(prefix + "Uniqueid") in self._ended:
            return None
        return self._leg(msg, prefix, at)

    # -- bridges ------------------------------------------------------------------------

    def _leave(self, leg_id: str, bridge: str | None = None) -> None:
        if self._bridges.leave(leg_id, bridge) and (leg := self._legs.get(leg_id)) is not None:
            leg.peer = None

    def _resolve(self, leg_id: str) -> str | None:
        return self._bridges.far_side(leg_id, self._legs, self._partner)

    def _partner(self, leg: _Leg) -> str | None:
        """The other half of a ``Local/...;1`` / ``;2`` pair."""
        name = leg.channel
        if not name.startswith("Local/") or name[-2:] not in (";1", ";2"):
            return None
        return self._by_channel.get(name[:-1] + ("2" if name.endswith("1") else "1"))

    def _relink(self, bridge: str, at: float) -> list[ChannelEvent]:
        out: list[ChannelEvent] = []
        for member in self._bridges.members_of(bridge):
            leg = self._legs.get(member)
            if leg is None or leg.plumbing or (peer := self._resolve(member)) is None:
                continue
            other = self._legs[peer]
            self._groups.union(leg.key, other.key)
            for a, b in ((leg, other), (other, leg)):
                if a.peer != b.leg_id:
                    a.peer = b.leg_id
                    out.append(self._event(a, K.BRIDGED, at, other_leg_id=b.leg_id))
        return out

    # -- handlers -----------------------------------------------------------------------

    def _on_newchannel(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        leg = self._live(msg, at)
        return [] if leg is None or leg.plumbing else [self._event(leg, K.CREATED, at)]

    def _on_newstate(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        leg = self._live(msg, at)
        state = (msg.get("ChannelStateDesc") or "").lower()
        if leg is None or leg.plumbing:
            return []
        if state == "ringing":
            return self._ringing(leg, at)
        if state == "up" and not leg.up:
            leg.up = True
            return [self._event(leg, K.ANSWERED, at)]
        return []

    def _ringing(self, leg: _Leg, at: float, other: str | None = None) -> list[ChannelEvent]:
        if leg.rang or leg.up:
            return []
        leg.rang = True
        return [self._event(leg, K.RINGING, at, other_leg_id=other)]

    def _on_dial_begin(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        if not _has_leg(msg, "Dest"):
            raise FieldError("AMI DialBegin: no DestUniqueid or DestChannel")
        caller = self._live(msg, at) if _has_leg(msg, "") else None
        dest = self._live(msg, at, "Dest")
        if dest is None:
            return []
        if dest.dialed_number is None:
            dest.dialed_number = _dialed(msg.get("DialString"))
        real_caller = caller if caller is not None and not caller.plumbing else None
        if caller is not None:
            self._groups.union(caller.key, dest.key)
        if real_caller is not None and self._groups.find(real_caller.key) not in (
            self._groups.originated
        ):
            self._mark_originator(real_caller)
        if dest.plumbing:
            return []
        return self._ringing(dest, at, real_caller.leg_id if real_caller else None)

    def _on_bridge_enter(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        bridge = msg.get("BridgeUniqueid")
        if not bridge:
            raise FieldError("AMI BridgeEnter: no BridgeUniqueid")
        leg = self._live(msg, at)
        if leg is None:
            return []
        if (swapped := msg.get("SwapUniqueid")) is not None:
            self._leave(swapped, bridge)
        self._bridges.enter(leg.leg_id, bridge)
        return self._relink(bridge, at)

    def _on_bridge_leave(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        """Leaving unbridges the leg; the two left in a bigger bridge are now a pair."""
        leg = self._live(msg, at)
        bridge = msg.get("BridgeUniqueid")
        if leg is None:
            return []
        self._leave(leg.leg_id, bridge)
        return self._relink(bridge, at) if bridge else []

    def _on_hold(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        leg = self._live(msg, at)
        kind = K.HELD if msg.name == "Hold" else K.UNHELD
        return [] if leg is None or leg.plumbing else [self._event(leg, kind, at)]

    def _on_hangup(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        leg = self._live(msg, at)
        if leg is None:
            return []
        out: list[ChannelEvent] = []
        if not leg.plumbing:
            cause = leg.cause or cause_name(msg.get("Cause"))
            recordings = _close(leg.recordings, at)
            out.append(self._event(leg, K.DESTROYED, at, hangup_cause=cause, recordings=recordings))
        self._forget(leg)
        return out

    def _wants_var(self, msg: AmiMessage) -> bool:
        name = _var_name(msg.get("Variable"))
        return name == _RECORDING_VAR or name in self._origin_vars

    def _on_varset(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        leg = self._live(msg, at)
        if leg is not None:
            self._variables(leg, {_var_name(msg.get("Variable")): msg.get("Value") or ""}, at)
        return []

    def _variables(self, leg: _Leg, values: Mapping[str, str], at: float) -> None:
        """Our variables on a leg: the recording file, the click-to-dial request id."""
        for name, raw in values.items():
            value = raw.strip()
            if not value:
                continue
            if name == _RECORDING_VAR:
                self._record(leg, value, at)
            elif name in self._origin_vars:
                self._groups.tags.setdefault(self._groups.find(leg.key), value)

    def _record(self, leg: _Leg, ref: str, at: float) -> None:
        if all(r.ref != ref for r in leg.recordings):
            leg.recordings.append(Recording(ref=ref, started_at=at))

    def _on_mixmonitor(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        leg = self._live(msg, at)
        if leg is None:
            return []
        if msg.name == "MixMonitorStop":
            leg.recordings = list(_close(leg.recordings, at))
        return []

    def _wants_app(self, msg: AmiMessage) -> bool:
        return (msg.get("Application") or "").lower() in _APPLICATIONS

    def _on_newexten(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        app = _APPLICATIONS[(msg.get("Application") or "").lower()]
        leg = self._live(msg, at)
        if leg is None or leg.plumbing or leg.application == app:
            return []
        leg.application = app
        return [self._event(leg, K.ANSWERED, at)] if leg.up else []

    def _on_identity(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        self._live(msg, at)
        return []

    def _on_transfer(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        if (msg.get("Result") or "").lower() != "success":
            return []
        if msg.name == "BlindTransfer":
            self._name_cause(msg.get("TransfererUniqueid"), "BLIND_TRANSFER")
        else:
            for prefix in ("OrigTransferer", "SecondTransferer"):
                self._name_cause(msg.get(prefix + "Uniqueid"), "ATTENDED_TRANSFER")
        return []

    def _on_pickup(self, msg: AmiMessage, at: float) -> list[ChannelEvent]:
        if not _has_leg(msg, "Target"):
            raise FieldError("AMI Pickup: no TargetUniqueid or TargetChannel")
        picker, target = self._live(msg, at), self._live(msg, at, "Target")
        if picker is not None and target is not None:
            self._groups.union(target.key, picker.key)
            target.cause = "PICKED_OFF"
        return []

    def _name_cause(self, leg_id: str | None, cause: str) -> None:
        leg = self._legs.get(leg_id or "")
        if leg is not None:
            leg.cause = cause


_HANDLERS: Final[Mapping[str, _Handler]] = {
    "Newchannel": AsteriskMapper._on_newchannel,
    "Newstate": AsteriskMapper._on_newstate,
    "Newexten": AsteriskMapper._on_newexten,
    "NewCallerid": AsteriskMapper._on_identity,
    "NewConnectedLine": AsteriskMapper._on_identity,
    "DialBegin": AsteriskMapper._on_dial_begin,
    "BridgeEnter": AsteriskMapper._on_bridge_enter,
    "BridgeLeave": AsteriskMapper._on_bridge_leave,
    "Hold": AsteriskMapper._on_hold,
    "Unhold": AsteriskMapper._on_hold,
    "Hangup": AsteriskMapper._on_hangup,
    "VarSet": AsteriskMapper._on_varset,
    "MixMonitorStart": AsteriskMapper._on_mixmonitor,
    "MixMonitorStop": AsteriskMapper._on_mixmonitor,
    "BlindTransfer": AsteriskMapper._on_transfer,
    "AttendedTransfer": AsteriskMapper._on_transfer,
    "Pickup": AsteriskMapper._on_pickup,
}
"""Every event name the mapper reads; anything else is skipped with one dict lookup."""

EVENT_NAMES: Final = frozenset(_HANDLERS)
"""The event names the mapper reads (subscribe to these; skip the rest before decoding)."""

_FILTERS: Final[Mapping[str, Callable[[AsteriskMapper, AmiMessage], bool]]] = {
    "VarSet": AsteriskMapper._wants_var,
    "Newexten": AsteriskMapper._wants_app,
}
"""Frequent events most of which say nothing to us: looked at before anything else."""


def _time(msg: AmiMessage, received_at: float | None) -> float:
    raw = msg.get("Timestamp")
    if raw is None:
        if received_at is None:
            raise FieldError(f"AMI {msg.name}: no Timestamp (set timestampevents=yes)")
        return received_at
    try:
        at = float(raw)
    except ValueError as exc:
        raise FieldError(f"AMI {msg.name}: bad Timestamp {raw[:30]!r}") from exc
    if not math.isfinite(at) or at < 0:
        raise FieldError(f"AMI {msg.name}: bad Timestamp {raw[:30]!r}")
    return at


def _var_name(raw: str | None) -> str:
    """``__CTIBRIDGE_REQ`` (inherited) → ``CTIBRIDGE_REQ``."""
    return (raw or "").lstrip("_").upper()


def _has_leg(msg: AmiMessage, prefix: str) -> bool:
    return bool(msg.get(prefix + "Uniqueid")) and bool(msg.get(prefix + "Channel"))


def _is_extension(value: str, digits: int) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= digits


def _dialed(dial_string: str | None) -> str | None:
    """The number in a DialString: ``15559876543@carrier`` → ``15559876543``."""
    if not dial_string:
        return None
    target = dial_string.split("&", 1)[0].rpartition("/")[2]
    return _exten(target.partition("@")[0].partition(",")[0])
