"""The demo organisation: one Kazoo account with six agents, a ring group, DIDs and callers.

Everything here is fixed data, so the demo, its fixtures and its tests always see the same
ids. Outside numbers come from Ofcom's drama ranges (07700 900xxx, 01632 960xxx, 0113 496
0xxx, 020 7946 0xxx, ...), which are never allocated to real subscribers; the two foreign
numbers are from the US 555-01xx and Australian 0491 570 fiction ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEMO",
    "Agent",
    "Caller",
    "Carrier",
    "DemoAccount",
    "Did",
    "RingGroup",
    "dialled_form",
]


@dataclass(frozen=True, slots=True)
class Agent:
    """One person: a Kazoo user with one softphone device."""

    extension: str
    first_name: str
    last_name: str
    user_id: str
    """Kazoo user id (``owner_id`` on this agent's legs)."""
    device_id: str
    """Kazoo device id (``authorizing_id`` on this agent's legs)."""
    login: str
    """Username for the softphone demo (Kazoo ``user_auth``)."""
    password: str
    sip_username: str
    sip_password: str
    did: str
    """Direct dial-in number, also this agent's external caller id."""

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def email(self) -> str:
        return f"{self.first_name}.{self.last_name}@harbourside.example".lower()

    def user_doc(self, timezone: str) -> dict[str, Any]:
        """The Kazoo user document (as ``PUT /v2/accounts/{id}/users`` takes it)."""
        return {
            "id": self.user_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.login,
            "password": self.password,
            "email": self.email,
            "presence_id": self.extension,
            "timezone": timezone,
            "priv_level": "user",
            "enabled": True,
            "caller_id": {
                "internal": {"name": self.name, "number": self.extension},
                "external": {"name": "Harbourside Lettings", "number": self.did},
            },
        }

    def device_doc(self, realm: str) -> dict[str, Any]:
        """The Kazoo device document of this agent's softphone."""
        return {
            "id": self.device_id,
            "name": f"{self.name} softphone",
            "owner_id": self.user_id,
            "device_type": "softphone",
            "enabled": True,
            "presence_id": self.extension,
            "sip": {
                "method": "password",
                "invite_format": "username",
                "username": self.sip_username,
                "password": self.sip_password,
                "realm": realm,
            },
        }


@dataclass(frozen=True, slots=True)
class RingGroup:
    extension: str
    name: str
    group_id: str
    members: tuple[str, ...]
    """Member extensions, rung all at once."""


@dataclass(frozen=True, slots=True)
class Did:
    """A number the carrier delivers to us, and where the callflow sends it."""

    number: str
    label: str
    target: str
    """An agent or ring group extension."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Someone outside the organisation."""

    number: str
    """E.164."""
    name: str
    company: str = ""


@dataclass(frozen=True, slots=True)
class Carrier:
    """The SIP trunk (a Kazoo offnet resource)."""

    name: str
    resource_id: str
    gateway: str
    """The carrier's signalling address."""
    sbc: str
    """Our public SIP address, where the carrier sends inbound calls."""
    global_resource: bool = False


@dataclass(frozen=True, slots=True)
class DemoAccount:
    account_id: str
    name: str
    realm: str
    api_key: str
    timezone: str
    agents: tuple[Agent, ...]
    ring_group: RingGroup
    dids: tuple[Did, ...]
    callers: tuple[Caller, ...]
    carrier: Carrier
    media_servers: tuple[str, ...]

    def agent(self, extension: str) -> Agent:
        for agent in self.agents:
            if agent.extension == extension:
                return agent
        raise KeyError(extension)

    def did(self, number: str) -> Did:
        for did in self.dids:
            if did.number == number:
                return did
        raise KeyError(number)

    @property
    def main_line(self) -> Did:
        return self.dids[0]

    @property
    def group_line(self) -> Did:
        return self.dids[1]

    def group_agents(self) -> tuple[Agent, ...]:
        return tuple(self.agent(ext) for ext in self.ring_group.members)


def dialled_form(e164: str) -> str:
    """How a UK agent types a number: national ``0…`` for UK numbers, ``00…`` abroad."""
    if e164.startswith("+44"):
        return "0" + e164[3:]
    return "00" + e164.lstrip("+")


def _agent(ext: str, first: str, last: str, ids: tuple[str, str], sip: tuple[str, str]) -> Agent:
    return Agent(
        extension=ext,
        first_name=first,
        last_name=last,
        user_id=ids[0],
        device_id=ids[1],
        login=f"{first}.{last}".lower(),
        password=f"harbour-{ext}",
        sip_username=sip[0],
        sip_password=sip[1],
        did=f"+441202555{ext}",
    )


_AGENTS = (
    _agent(
        "101",
        "Olivia",
        "Bennett",
        ("908eb5eb5dd48277d7abbd2596f2fd72", "be2db8ae31f195a6a41c28974d5148a5"),
        ("user_hnkzo9a2or", "COx3h6aBLQpuGJgL"),
    ),
    _agent(
        "102",
        "James",
        "Whitfield",
        ("6775da531ae40b8948d6c75a110e3deb", "8b21a3bf0d4f23b0b01461a366a53228"),
        ("user_wyhgrigzqe", "1gAdmmYYeNio6t9X"),
    ),
    _agent(
        "103",
        "Priya",
        "Raman",
        ("e028d56ac9a5b57b3b4bb4ceeae85a40", "58be3e7586dae4d6e7a2f66cd6d2289a"),
        ("user_o1p16qx40j", "b9GdsA0f3QY9WBZi"),
    ),
    _agent(
        "104",
        "Tom",
        "Hargreaves",
        ("187ca81363e366c1ec6012fd0b284eaa", "cbc9b3b8b5cab64efca2c89546fd11de"),
        ("user_5mvufrnrz1", "fCkqtoalm6grIMdR"),
    ),
    _agent(
        "105",
        "Aisha",
        "Okafor",
        ("9c7681edaa7aee56106d80909ff70061", "bf1dc95cd2a33827e1d6cd3e3788359d"),
        ("user_jesgcvxokd", "DtgTsqIb9nAb758L"),
    ),
    _agent(
        "106",
        "Daniel",
        "Price",
        ("e851060167e0fc704e63d868b7257639", "269c44edd98d6ccbc68d64f50abbfa0b"),
        ("user_kqu61b90us", "sqxMnFkyLEoJc42b"),
    ),
)

_CALLERS = (
    Caller("+447700900123", "Sarah Mitchell"),
    Caller("+447700900457", "Mark Davies"),
    Caller("+447700900218", "Emma Thompson-Reid"),
    Caller("+447700900731", "Liam O'Connor"),
    Caller("+447700900064", "Hannah Clarke"),
    Caller("+447700900592", "Ravi Patel"),
    Caller("+447700900846", "Chloe Evans"),
    Caller("+447700900319", "George Walsh"),
    Caller("+447700900975", "Zara Ahmed"),
    Caller("+447700900402", "Owen Roberts"),
    Caller("+447700900688", "Megan Hughes"),
    Caller("+447700900150", "Callum Fraser"),
    Caller("+447700900263", "Sophie Turner"),
    Caller("+447700900814", "Noah Campbell"),
    Caller("+441632960018", "Margaret Ellis"),
    Caller("+441632960274", "Peter Lawson", "Lawson & Co Solicitors"),
    Caller("+441632960503", "Fiona Grant"),
    Caller("+441632960741", "Alan Brooks", "Brooks Property Maintenance"),
    Caller("+441632960936", "Susan Reeves"),
    Caller("+441134960215", "Imran Hussain", "Aire Valley Estates"),
    Caller("+441134960872", "Joanne Pickering"),
    Caller("+442079460381", "Charlotte Hale", "Thamesmead Insurance"),
    Caller("+442079460927", "Rupert Vaughan", "Vaughan Capital"),
    Caller("+442079460144", "Nadia Kowalski"),
    Caller("+441214960357", "Darren Walker", "Midland Removals"),
    Caller("+441214960690", "Amrit Sandhu"),
    Caller("+441614960226", "Kelly Robinson", "Northern Gas Services"),
    Caller("+441614960758", "Steven Ashworth"),
    Caller("+441314960419", "Eilidh MacLeod"),
    Caller("+441314960085", "Hamish Stewart", "Forth Lettings"),
    Caller("+442920180632", "Rhys Morgan"),
    Caller("+442920180297", "Carys Llewellyn", "Cardiff Bay Surveyors"),
    Caller("+442896496114", "Niamh Doherty"),
    Caller("+442896496580", "Conor Quinn", "Lagan Plumbing"),
    Caller("+441174960463", "Rebecca Cole", "Avon Letting Agents"),
    Caller("+441914980351", "Gary Robson"),
    Caller("+441164960729", "Deepa Mistry"),
    Caller("+441514960846", "Anthony Byrne", "Mersey Deposit Services"),
    Caller("+12025550143", "Jennifer Walsh", "Atlantic Relocation Inc"),
    Caller("+61491570156", "Mitchell Hayes"),
)

DEMO = DemoAccount(
    account_id="23069c7d021428ce4b1c8bc249c08775",
    name="Harbourside Lettings",
    realm="demo.ctibridge.test",
    api_key="5d754bb46b3d1755d82c45974c1fbe6df054e663f8ad59b9ccb7196a133971ed",
    timezone="Europe/London",
    agents=_AGENTS,
    ring_group=RingGroup(
        extension="200",
        name="Lettings team",
        group_id="5633f40917b3cc9c61a07cc698cbac34",
        members=("103", "104", "105"),
    ),
    dids=(
        Did("+441202555100", "Main line", "101"),
        Did("+441202555200", "Lettings team", "200"),
        *(Did(agent.did, f"{agent.name} direct", agent.extension) for agent in _AGENTS),
    ),
    callers=_CALLERS,
    carrier=Carrier(
        name="Wessex SIP Trunking",
        resource_id="c13494947291bca85612f26b10ad34ea",
        gateway="203.0.113.5",
        sbc="198.51.100.20",
    ),
    media_servers=("fs1.demo.ctibridge.test", "fs2.demo.ctibridge.test"),
)
"""The demo organisation."""
