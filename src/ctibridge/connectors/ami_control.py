"""Call control on Asterisk, over the event connector's AMI session (reference §2.4).

* Click-to-dial is an ``Originate`` with ``Async: true``: ``Channel`` = the agent's endpoint
  (``PJSIP/1001``), ``Context``/``Exten``/``Priority`` = the number in ``dial_context``,
  ``ChannelId`` = a leg id we choose (so the call is ours before its first event) and
  ``Variable: __CTIBRIDGE_REQ=<request id>`` (inherited by every channel of the call), plus
  auto-answer SIP headers on PJSIP endpoints. The immediate reply only says "queued"; we then
  wait (``request_timeout`` at most) for the first sign: the leg's first event (the phone
  rings) or an ``OriginateResponse: Failure`` (the phone could not be reached: refused).
* ``Hangup``, ``BlindTransfer`` and ``Atxfer`` name the agent's leg by its Uniqueid: Asterisk
  looks a channel up by name, then by Uniqueid. DTMF goes to the other party: ``Getvar
  BRIDGEPEER`` on the agent's leg, then ``PlayDTMF`` (one digit per action) on that channel.
* Not offered: hold/resume (Asterisk cannot make a SIP handset hold; holding is signalled by
  the phone), answer (the handset answers by itself: auto-answer on originate covers
  click-to-dial).

An ``Error`` reply becomes ``LegGone`` when the channel does not exist any more, else
``PbxRejected`` with Asterisk's own message; no session: ``PbxUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Final

from ctibridge.callstate.events import AgentRef
from ctibridge.config import AsteriskSettings
from ctibridge.connectors.ami import AmiConnector
from ctibridge.errors import LegGone, NotSupported, PbxRejected
from ctibridge.protocols.ami import AmiMessage
from ctibridge.types import LegId, TenantId

__all__ = ["AUTO_ANSWER_VARIABLES", "CAPABILITIES", "REQUEST_VARIABLE", "AsteriskControl"]

logger = logging.getLogger(__name__)

CAPABILITIES: Final = frozenset(
    {"originate", "hangup", "blind_transfer", "attended_transfer", "dtmf"}
)
"""What Asterisk can be asked to do over AMI. Not ``hold``/``resume``: a PBX cannot make a
SIP phone hold (only the phone signals hold), and parking the other party is not hold.
Not ``answer``: the handset answers by itself; click-to-dial asks it to with auto-answer."""

REQUEST_VARIABLE: Final = "__CTIBRIDGE_REQ"
"""Our click-to-dial variable; ``__`` makes every channel of the call inherit it."""

AUTO_ANSWER_VARIABLES: Final = (
    "PJSIP_HEADER(add,Call-Info)=;answer-after=0",
    "PJSIP_HEADER(add,Alert-Info)=info=alert-autoanswer;delay=0",
    "PJSIP_HEADER(add,Answer-Mode)=Auto",
)
"""SIP headers phones read as "answer at once" (on PJSIP endpoints only)."""

_GONE: Final = ("no such channel", "channel not found", "channel does not exist")
_REASONS: Final = {
    "0": "could not be reached",
    "1": "hung up",
    "3": "did not answer",
    "5": "is busy",
    "8": "could not be reached (congestion)",
}
"""``OriginateResponse`` ``Reason`` (an AST_CONTROL code) → what happened to the phone."""


class AsteriskControl:
    """The ``CallControl`` of Asterisk (see ``services/call_control.py``)."""

    pbx = "asterisk"

    def __init__(self, settings: AsteriskSettings, *, connector: AmiConnector) -> None:
        self._settings = settings
        self._connector = connector

    def capabilities(self) -> frozenset[str]:
        return CAPABILITIES

    async def originate(
        self,
        tenant_id: TenantId,
        agent: AgentRef,
        number: str,
        *,
        request_id: str,
        auto_answer: bool = True,
    ) -> LegId | None:
        """Ring the agent's endpoint, then dial ``number``; returns the agent leg's Uniqueid."""
        channel = _endpoint(agent)
        leg = LegId(str(uuid.uuid4()))
        session = self._connector.session()
        await session.allow("OriginateResponse")
        action_id = f"ctibridge-c2d-{leg}"
        outcome = session.expect(action_id, leg)
        try:
            reply = await session.action(
                "Originate",
                self._originate(channel, number, leg, request_id, auto_answer),
                action_id=action_id,
            )
            _check(reply, "place the call", on_leg=False)
            await self._first_sign(outcome, channel)
        finally:
            outcome.cancel()
        logger.info(
            "asterisk: originate %s from %s to %s in %s: leg %s",
            request_id,
            channel,
            number,
            tenant_id,
            leg,
        )
        return leg

    async def hangup(self, tenant_id: TenantId, leg: LegId) -> None:
        await self._act("hang up", "Hangup", {"Channel": leg, "Cause": "16"}, leg)

    async def blind_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        """The bridge's blind transfer, with the agent's leg as the transferer."""
        headers = {"Channel": leg, "Exten": target, "Context": self._settings.dial_context}
        await self._act("transfer the call", "BlindTransfer", headers, leg)

    async def attended_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        """Asterisk's DTMF-style attended transfer (needs an ``atxfer`` feature code in
        features.conf): the agent's leg calls ``target`` while the other party waits; the
        agent completes it by hanging up."""
        headers = {"Channel": leg, "Exten": target, "Context": self._settings.dial_context}
        await self._act("transfer the call", "Atxfer", headers, leg)

    async def send_dtmf(self, tenant_id: TenantId, leg: LegId, digits: str) -> None:
        """Plays the digits to the party bridged to the agent's leg (``BRIDGEPEER``), as if
        the agent had keyed them; ``PlayDTMF`` takes one digit per action."""
        peer = await self._peer(leg)
        for digit in digits:
            await self._act("send the digits", "PlayDTMF", {"Channel": peer, "Digit": digit}, leg)

    async def hold(self, tenant_id: TenantId, leg: LegId) -> None:
        raise NotSupported("Asterisk cannot put a call on hold for you; use the phone's hold key")

    async def resume(self, tenant_id: TenantId, leg: LegId) -> None:
        raise NotSupported("Asterisk cannot take a call off hold for you; use the phone")

    async def answer(self, tenant_id: TenantId, leg: LegId) -> None:
        raise NotSupported("Asterisk cannot answer a phone; answer on the phone itself")

    async def close(self) -> None:
        """Nothing to close: the session belongs to the event connector."""

    # -- helpers ---------------------------------------------------------------------------

    def _originate(
        self, channel: str, number: str, leg: LegId, request_id: str, auto_answer: bool
    ) -> list[tuple[str, str]]:
        headers = [
            ("Channel", channel),
            ("Context", self._settings.dial_context),
            ("Exten", number),
            ("Priority", "1"),
            ("ChannelId", leg),
            ("Async", "true"),
            ("Variable", f"{REQUEST_VARIABLE}={request_id}"),
        ]
        if auto_answer and channel.upper().startswith("PJSIP/"):
            headers += [("Variable", variable) for variable in AUTO_ANSWER_VARIABLES]
        return headers

    async def _first_sign(self, outcome: asyncio.Future[AmiMessage], channel: str) -> None:
        """Wait for the leg's first event or the originate's failure (bounded)."""
        try:
            async with asyncio.timeout(self._settings.request_timeout):
                first = await asyncio.shield(outcome)
        except TimeoutError:
            logger.warning("asterisk: originate on %s queued, no sign of it yet", channel)
            return
        failed = first.name == "OriginateResponse" and (first.get("Response") or "") != "Success"
        if failed:
            reason = first.get("Reason") or "0"
            what = _REASONS.get(reason, f"failed (reason {reason})")
            raise PbxRejected(
                f"Could not place the call: your phone {channel} {what}",
                details={"asterisk_reason": reason, "channel": channel},
            )

    async def _peer(self, leg: LegId) -> str:
        headers = {"Channel": leg, "Variable": "BRIDGEPEER"}
        reply = await self._connector.session().action("Getvar", headers)
        _check(reply, "send the digits", on_leg=True)
        peer = (reply.get("Value") or "").strip()
        if not peer:
            raise PbxRejected("Could not send the digits: the call is not connected to anyone")
        return peer

    async def _act(self, what: str, action: str, headers: dict[str, str], leg: LegId) -> None:
        reply = await self._connector.session().action(action, headers)
        _check(reply, what, on_leg=True)
        logger.info("asterisk: %s on leg %s done", action, leg)


def _endpoint(agent: AgentRef) -> str:
    """The agent's endpoint (``PJSIP/1001``): their device, else a user id that is one."""
    for candidate in (agent.device_id, agent.user_id):
        if candidate and "/" in candidate:
            return candidate
    raise PbxRejected("Could not place the call: your agent has no Asterisk endpoint (PJSIP/…)")


def _check(reply: AmiMessage, what: str, *, on_leg: bool) -> None:
    if (reply.get("Response") or "").lower() == "success":
        return
    said = reply.get("Message") or "error"
    details = {"asterisk_message": said}
    if on_leg and any(gone in said.lower() for gone in _GONE):
        gone = "the phone system no longer has this call leg"
        raise LegGone(f"Could not {what}: {gone} ({said})", details=details)
    raise PbxRejected(f"Could not {what}: Asterisk refused ({said})", details=details)
