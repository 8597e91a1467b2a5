"""Call control on FreeSWITCH, over the event connector's ESL session (reference §3.4).

* Click-to-dial is ``bgapi originate {origination_uuid=<leg>,ctibridge_req=<request id>,
  sip_auto_answer=true}user/<agent> <number> XML <dial_context>``: the agent's phone first
  (asked to answer at once), then ``number`` from the dialplan. ``origination_uuid`` makes
  the agent leg ours before its first event. The ``+OK Job-UUID`` reply only says "started";
  we then wait (``request_timeout`` at most) for the first sign: the leg's first event (the
  phone rings) or the job's ``BACKGROUND_JOB`` ``-ERR <cause>`` (refused).
* ``uuid_kill``, ``uuid_hold`` / ``uuid_hold off`` (the switch holds the agent's leg and
  plays music to the other party), ``uuid_transfer <leg> -bleg <target> XML <context>`` (the
  other party goes to ``target``; the agent's leg leaves the bridge) are blocking ``api``
  commands on the agent's leg. DTMF goes to the other party: ``uuid_getvar <leg>
  bridge_uuid``, then ``uuid_send_dtmf`` on that leg.
* Not offered: answer (``uuid_answer`` answers the switch's side of a leg, not the agent's
  handset; auto-answer on originate covers click-to-dial) and attended transfer.

``-ERR No such channel`` becomes ``LegGone``, any other ``-ERR`` ``PbxRejected`` with
FreeSWITCH's own text; no session: ``PbxUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Final

from ctibridge.callstate.events import AgentRef
from ctibridge.config import FreeswitchSettings
from ctibridge.connectors.esl import EslConnector
from ctibridge.errors import LegGone, NotSupported, PbxRejected
from ctibridge.protocols.esl import EslEvent, EslMessage
from ctibridge.types import LegId, TenantId

__all__ = ["CAPABILITIES", "REQUEST_VARIABLE", "FreeswitchControl"]

logger = logging.getLogger(__name__)

CAPABILITIES: Final = frozenset({"originate", "hangup", "hold", "resume", "blind_transfer", "dtmf"})
"""What FreeSWITCH can be asked to do over ESL. Not ``answer``: ``uuid_answer`` answers the
switch's side only, not the agent's phone. Not ``attended_transfer``: no API command starts
one on a bridged call the way a phone's transfer key does."""

REQUEST_VARIABLE: Final = "ctibridge_req"
_SAFE: Final = re.compile(r"[A-Za-z0-9_.@+*#-]{1,80}")
"""What we put into a command line (numbers, users, uuids): no spaces, commas or braces."""


class FreeswitchControl:
    """The ``CallControl`` of FreeSWITCH (see ``services/call_control.py``)."""

    pbx = "freeswitch"

    def __init__(self, settings: FreeswitchSettings, *, connector: EslConnector) -> None:
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
        """Ring the agent's user, then dial ``number``; returns the agent leg's uuid."""
        user = _user(agent)
        leg, job = LegId(str(uuid.uuid4())), str(uuid.uuid4())
        variables = [f"origination_uuid={leg}", f"{REQUEST_VARIABLE}={_safe(request_id)}"]
        if auto_answer:
            variables.append("sip_auto_answer=true")
        args = f"{{{','.join(variables)}}}user/{user} {_safe(number)} XML {self._context}"
        session = self._connector.session()
        await session.allow("BACKGROUND_JOB")
        outcome = session.expect(job, leg)
        try:
            reply = await session.bgapi("originate", args, job)
            _check(reply.reply_text or "", "place the call", on_leg=False)
            await self._first_sign(outcome, user)
        finally:
            outcome.cancel()
        logger.info(
            "freeswitch: originate %s from user/%s to %s in %s: leg %s",
            request_id,
            user,
            number,
            tenant_id,
            leg,
        )
        return leg

    async def hangup(self, tenant_id: TenantId, leg: LegId) -> None:
        await self._api("hang up", "uuid_kill", _safe(leg), leg)

    async def hold(self, tenant_id: TenantId, leg: LegId) -> None:
        await self._api("put the call on hold", "uuid_hold", _safe(leg), leg)

    async def resume(self, tenant_id: TenantId, leg: LegId) -> None:
        await self._api("take the call off hold", "uuid_hold", f"off {_safe(leg)}", leg)

    async def blind_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        args = f"{_safe(leg)} -bleg {_safe(target)} XML {self._context}"
        await self._api("transfer the call", "uuid_transfer", args, leg)

    async def attended_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        raise NotSupported("FreeSWITCH attended transfer is not offered; use the phone")

    async def send_dtmf(self, tenant_id: TenantId, leg: LegId, digits: str) -> None:
        peer = await self._peer(leg)
        await self._api("send the digits", "uuid_send_dtmf", f"{peer} {_safe(digits)}", leg)

    async def answer(self, tenant_id: TenantId, leg: LegId) -> None:
        raise NotSupported("FreeSWITCH cannot answer a phone; answer on the phone itself")

    async def close(self) -> None:
        """Nothing to close: the session belongs to the event connector."""

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _context(self) -> str:
        return _safe(self._settings.dial_context)

    async def _first_sign(self, outcome: asyncio.Future[EslEvent], user: str) -> None:
        """Wait for the leg's first event or the job's failure (bounded)."""
        try:
            async with asyncio.timeout(self._settings.request_timeout):
                first = await asyncio.shield(outcome)
        except TimeoutError:
            logger.warning("freeswitch: originate to user/%s started, no sign of it yet", user)
            return
        result = first.body.strip()
        if first.name == "BACKGROUND_JOB" and not result.startswith("+OK"):
            cause = result.removeprefix("-ERR").strip() or "error"
            raise PbxRejected(
                f"Could not place the call: your phone user/{user} could not be reached ({cause})",
                details={"freeswitch_message": result, "user": user},
            )

    async def _peer(self, leg: LegId) -> str:
        reply = await self._connector.session().api("uuid_getvar", f"{_safe(leg)} bridge_uuid")
        text = reply.text.strip()
        _check(text, "send the digits", on_leg=True)
        if not text or text == "_undef_" or not _SAFE.fullmatch(text):
            raise PbxRejected("Could not send the digits: the call is not connected to anyone")
        return text

    async def _api(self, what: str, command: str, args: str, leg: LegId) -> None:
        reply: EslMessage = await self._connector.session().api(command, args)
        _check(reply.text.strip(), what, on_leg=True)
        logger.info("freeswitch: %s on leg %s done", command, leg)


def _safe(value: str) -> str:
    if not _SAFE.fullmatch(value):
        raise PbxRejected(f"Could not send {value[:40]!r} to FreeSWITCH: unexpected characters")
    return value


def _user(agent: AgentRef) -> str:
    """The agent's directory user (``1001`` or ``1001@domain``)."""
    for candidate in (agent.device_id, agent.extension, agent.user_id):
        if candidate and _SAFE.fullmatch(candidate):
            return candidate
    raise PbxRejected("Could not place the call: your agent has no FreeSWITCH user")


def _check(text: str, what: str, *, on_leg: bool) -> None:
    """An ``-ERR``/``-USAGE`` answer → the error the agent sees."""
    if not text.startswith("-"):
        return
    said = text.removeprefix("-ERR").strip() or text
    details = {"freeswitch_message": text}
    if on_leg and "no such channel" in said.lower():
        gone = "the phone system no longer has this call leg"
        raise LegGone(f"Could not {what}: {gone} ({said})", details=details)
    raise PbxRejected(f"Could not {what}: FreeSWITCH refused ({said})", details=details)
