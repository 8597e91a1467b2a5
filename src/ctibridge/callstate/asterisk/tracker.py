"""What the Asterisk mapper knows between events: live legs (by Uniqueid and by channel
name), conversation groups, bridges and the legs that ended; how a message's channel
snapshot updates them; and how a leg becomes a :class:`ChannelEvent`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ctibridge.callstate.asterisk.bridges import _Bridges
from ctibridge.callstate.asterisk.endpoints import _Endpoints
from ctibridge.callstate.asterisk.fields import _RECORDING_VAR, _exten, _has_leg, _text, _var_name
from ctibridge.callstate.asterisk.leg import _Leg
from ctibridge.callstate.conversations import _Groups, _leg_event, _Recent
from ctibridge.callstate.events import ChannelEvent, LegEventKind, Recording
from ctibridge.errors import FieldError
from ctibridge.protocols.ami import AmiMessage

K = LegEventKind


class _Tracker:
    """The state and bookkeeping under :class:`AsteriskMapper` (which adds the handlers)."""

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
        self._endpoints = _Endpoints(
            internal_digits,
            re.compile(agent_pattern) if agent_pattern else None,
            re.compile(trunk_pattern) if trunk_pattern else None,
        )
        self._origin_vars = frozenset(v.upper() for v in origin_vars)
        self._reset()

    def _reset(self) -> None:
        self._legs: dict[str, _Leg] = {}
        self._by_channel: dict[str, str] = {}
        self._groups = _Groups()
        self._ended = _Recent()
        self._bridges = _Bridges()

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
        end = self._endpoints.classify(channel)
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
        return _leg_event(
            leg,
            self._groups,
            kind,
            at,
            tenant_id=self.tenant_id,
            pbx="asterisk",
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

    # -- our variables ------------------------------------------------------------------

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
