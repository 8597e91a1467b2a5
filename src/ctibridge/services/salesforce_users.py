"""Which Salesforce user each agent is: matching agents to the org's active users.

An agent matches a user whose federation id (the single sign-on identity) is the agent's
sign-in login or e-mail address; failing that, a user with the agent's e-mail address. Both
comparisons ignore case. A mapping the agent already has to an active user is kept, so a
mapping set by hand (``PUT /api/agents/{id}``) survives a new match. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ctibridge.storage.base import Agent

__all__ = ["USERS_SOQL", "SalesforceUser", "match_agents"]

USERS_SOQL = "SELECT Id, Email, FederationIdentifier, Name FROM User WHERE IsActive = true"

_Index = dict[str, list["SalesforceUser"]]


@dataclass(frozen=True, slots=True)
class SalesforceUser:
    id: str
    name: str = ""
    email: str = ""
    federation_id: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SalesforceUser | None:
        if not row.get("Id"):
            return None
        return cls(
            str(row["Id"]),
            str(row.get("Name") or ""),
            str(row.get("Email") or ""),
            str(row.get("FederationIdentifier") or ""),
        )

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "email": self.email}


def _index(users: Iterable[SalesforceUser], key: Callable[[SalesforceUser], str]) -> _Index:
    out: _Index = {}
    for user in users:
        if key(user).strip():
            out.setdefault(key(user).strip().lower(), []).append(user)
    return out


def _same_id(a: str, b: str) -> bool:
    """The 15- and 18-character forms of one Salesforce id name the same record."""
    return len(a) in (15, 18) and len(b) in (15, 18) and a[:15] == b[:15]


def _candidates(
    agent: Agent, by_federation: _Index, by_email: _Index
) -> tuple[str, list[SalesforceUser]]:
    """How the agent was looked for (``federation_id`` or ``email``) and who was found."""
    keys = [k.strip().lower() for k in (agent.login, agent.email) if k]
    found = list({u.id: u for k in keys for u in by_federation.get(k, [])}.values())
    if found:
        return "federation_id", found
    email = (agent.email or "").strip().lower()
    return "email", list(by_email.get(email, [])) if email else []


def _match_one(
    agent: Agent, users: list[SalesforceUser], by_federation: _Index, by_email: _Index
) -> tuple[str, dict[str, Any]]:
    """Which list the agent goes in (``matched``, ``ambiguous``, ``unmatched``), and its entry."""
    base = {"agent_id": agent.agent_id, "name": agent.name, "email": agent.email}
    current = agent.crm_user_id or ""
    kept = next((u for u in users if _same_id(u.id, current)), None)
    if kept is not None:
        entry = {"crm_user_id": current, "user": kept.as_dict(), "by": "existing"}
        return "matched", {**base, **entry, "changed": False}
    by, found = _candidates(agent, by_federation, by_email)
    if len(found) == 1:
        user = found[0]
        entry = {"crm_user_id": user.id, "user": user.as_dict(), "by": by}
        return "matched", {**base, **entry, "changed": user.id != current}
    if found:
        return "ambiguous", {**base, "by": by, "candidates": [u.as_dict() for u in found]}
    return "unmatched", {**base, "crm_user_id": agent.crm_user_id}


def match_agents(agents: Iterable[Agent], users: Iterable[SalesforceUser]) -> dict[str, Any]:
    """``{"users": n, "matched": [...], "ambiguous": [...], "unmatched": [...]}``; each entry
    names the agent; matched ones carry ``crm_user_id``, ``user``, ``by`` (``existing``,
    ``federation_id`` or ``email``) and ``changed``; ambiguous ones their ``candidates``."""
    users = list(users)
    by_federation = _index(users, lambda u: u.federation_id)
    by_email = _index(users, lambda u: u.email)
    report: dict[str, Any] = {"users": len(users), "matched": [], "ambiguous": [], "unmatched": []}
    for agent in agents:
        bucket, entry = _match_one(agent, users, by_federation, by_email)
        report[bucket].append(entry)
    return report
