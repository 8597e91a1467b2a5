"""What the simulated Kazoo holds: accounts (users, devices, live channels, recordings),
auth tokens, whether it is up, and the records of what clients asked for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["QuickCall", "QuickCallHook", "RecordedRequest", "Subscription"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth_token: str | None


@dataclass(frozen=True, slots=True)
class QuickCall:
    """A click-to-dial request: ring ``target`` first, then dial ``number``."""

    account_id: str
    target_type: str
    """``user`` or ``device``."""
    target_id: str
    number: str
    call_id: str
    """The Call-ID the target's leg will carry (``<36 hex>-quickcall``)."""
    options: dict[str, str]
    custom_application_vars: dict[str, str]


@dataclass(frozen=True, slots=True)
class Subscription:
    session_id: int
    account_id: str
    binding: str


@dataclass(slots=True)
class _Account:
    api_key: str | None
    parent_id: str | None
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    recordings: dict[str, _Recording] = field(default_factory=dict)
    last_event: dict[str, dict[str, Any]] = field(default_factory=dict)
    """call id -> the newest event data of that live channel (to build follow-up events)."""


@dataclass(frozen=True, slots=True)
class _Recording:
    doc: dict[str, Any]
    data: bytes


QuickCallHook = Callable[[QuickCall], Awaitable[None] | None]


@dataclass(slots=True, eq=False)
class _State:
    """Shared by the websocket hub, the REST handlers and the control plane."""

    accounts: dict[str, _Account] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    """auth token → the account it was issued for."""
    available: bool = True
    requests: list[RecordedRequest] = field(default_factory=list)
    quickcalls: list[QuickCall] = field(default_factory=list)

    def within(self, auth_account_id: str, account_id: str | None) -> bool:
        """``account_id`` is ``auth_account_id`` or one of its descendants."""
        seen: set[str] = set()
        while account_id is not None and account_id in self.accounts and account_id not in seen:
            if account_id == auth_account_id:
                return True
            seen.add(account_id)
            account_id = self.accounts[account_id].parent_id
        return False
