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

Modules: ``mapper`` (:class:`AsteriskMapper`: what each event means), ``tracker`` (the legs,
groups and bridges it keeps between events), ``endpoints`` (agent, trunk or plumbing),
``bridges`` (two-party bridges, seen through ``Local/`` pairs), ``leg`` (per-leg state),
``fields`` (reading header values) and ``causes`` (Q.850 names).
"""

from __future__ import annotations

from ctibridge.callstate.asterisk.causes import Q850_CAUSES, cause_name
from ctibridge.callstate.asterisk.mapper import EVENT_NAMES, AsteriskMapper

__all__ = ["EVENT_NAMES", "Q850_CAUSES", "AsteriskMapper", "cause_name"]
