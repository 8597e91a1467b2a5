"""The Asterisk mapper: what each AMI event means for the legs it names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ctibridge.callstate.asterisk.causes import cause_name
from ctibridge.callstate.asterisk.fields import _RECORDING_VAR, _dialed, _has_leg, _time, _var_name
from ctibridge.callstate.asterisk.leg import _Leg
from ctibridge.callstate.asterisk.tracker import _Tracker
from ctibridge.callstate.conversations import _close
from ctibridge.callstate.events import ChannelEvent, LegEventKind
from ctibridge.errors import FieldError
from ctibridge.protocols.ami import AmiMessage

__all__ = ["EVENT_NAMES", "AsteriskMapper"]

K = LegEventKind

_APPLICATIONS: Final[Mapping[str, str]] = {
    "voicemail": "voicemail",
    "voicemailmain": "voicemail",
    "queue": "queue",
    "confbridge": "conference",
    "meetme": "conference",
}

_Handler = Callable[["AsteriskMapper", AmiMessage, float], list[ChannelEvent]]


class AsteriskMapper(_Tracker):
    """Folds AMI messages of one Asterisk (one tenant) into channel events."""

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

        The mapper forgets what it knew and starts again from the listing, except the
        recordings of the legs still listed: the listing does not name them, and a leg's
        recordings go out with its hang-up.
        """
        recordings = {leg.leg_id: leg.recordings for leg in self._legs.values() if leg.recordings}
        self._reset()
        listed: list[_Leg] = []
        for item in core_show_channels:
            if item.name != "CoreShowChannel" or not _has_leg(item, ""):
                continue
            leg = self._leg(item, "", at)
            leg.recordings = recordings.get(leg.leg_id, leg.recordings)
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
