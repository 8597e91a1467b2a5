"""What kind of endpoint a channel is: an agent's phone, a trunk, or PBX plumbing.

A ``PJSIP/``, ``SIP/`` or ``IAX2/`` endpoint whose name is at most ``digits`` digits is an
agent's phone (or ``agent_re`` matches the device); any other endpoint is a trunk (and
``trunk_re`` always wins). ``Local/`` halves and other plumbing channels are neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ctibridge.callstate.events import AgentRef, Party

_AGENT_TECHS: Final = frozenset({"PJSIP", "SIP", "IAX2"})
_PLUMBING: Final = frozenset({"Local", "Announcer", "CBAnn", "CBRec", "Snoop", "Recorder"})


@dataclass(frozen=True, slots=True)
class _Endpoint:
    party: Party
    agent: AgentRef | None
    plumbing: bool


@dataclass(frozen=True, slots=True)
class _Endpoints:
    """Classifies channel names for one Asterisk (its extension length and patterns)."""

    digits: int
    agent_re: re.Pattern[str] | None
    trunk_re: re.Pattern[str] | None

    def classify(self, channel: str) -> _Endpoint:
        tech, _sep, rest = channel.partition("/")
        if tech in _PLUMBING:
            return _Endpoint(Party.UNKNOWN, None, True)
        endpoint = rest.rpartition("-")[0] or rest
        device = f"{tech}/{endpoint}"
        if self.trunk_re is not None and self.trunk_re.search(device):
            return _Endpoint(Party.TRUNK, None, False)
        if tech in _AGENT_TECHS and _is_extension(endpoint, self.digits):
            return _Endpoint(Party.AGENT, AgentRef(device_id=device, extension=endpoint), False)
        match = self.agent_re.fullmatch(device) if self.agent_re is not None else None
        if match is not None:
            ext = match.groupdict().get("ext") or endpoint
            return _Endpoint(Party.AGENT, AgentRef(device_id=device, extension=ext), False)
        return _Endpoint(Party.TRUNK, None, False)


def _is_extension(value: str, digits: int) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= digits
