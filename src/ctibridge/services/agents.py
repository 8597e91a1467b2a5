"""Agents, their sign-in and API tokens.

Tokens are random, shown once and stored as a SHA-256 hash; passwords are scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ctibridge.errors import Forbidden, InvalidRequest, NotAuthenticated, NotFound
from ctibridge.services.directory import AgentDirectory
from ctibridge.storage.base import Agent, ApiToken, Storage
from ctibridge.types import AgentId, TenantId

__all__ = ["ALL_TENANTS", "AgentsService", "Principal", "hash_password", "verify_password"]

ALL_TENANTS = TenantId("*")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + "$".join(base64.b64encode(x).decode() for x in (salt, digest))


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    try:
        salt_b64, digest_b64 = stored.split("$")[1:]
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    check = hashlib.scrypt(password.encode(), salt=salt, dklen=len(digest), **_SCRYPT)
    return hmac.compare_digest(check, digest)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request or socket acts as."""

    role: str
    """``agent`` or ``admin``."""
    tenant_id: TenantId
    """``*`` for an admin of every tenant."""
    agent: Agent | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def agent_id(self) -> AgentId | None:
        return self.agent.agent_id if self.agent is not None else None

    def can_see_tenant(self, tenant_id: str) -> bool:
        return self.tenant_id in (ALL_TENANTS, tenant_id)


class AgentsService:
    def __init__(
        self,
        *,
        storage: Storage,
        directory: AgentDirectory,
        token_ttl: float = 12 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self.directory = directory
        self._ttl = token_ttl
        self._clock = clock
        self._cache: dict[str, tuple[Principal, float | None]] = {}

    async def load(self) -> None:
        agents: list[Agent] = []
        for tenant in await self._storage.list_tenants():
            agents.extend(await self._storage.list_agents(tenant.tenant_id))
        self.directory.replace(agents)

    async def save_agent(self, agent: Agent, *, password: str | None = None) -> Agent:
        if password is not None:
            if len(password) < 8:
                raise InvalidRequest("a password needs at least 8 characters")
            agent = replace(agent, password_hash=hash_password(password))
        elif agent.password_hash is None:
            old = await self._storage.get_agent(agent.agent_id)
            if old is not None:
                agent = replace(agent, password_hash=old.password_hash)
        await self._storage.upsert_agent(agent)
        self.directory.put(agent)
        return agent

    async def list_agents(self, tenant_id: TenantId) -> list[Agent]:
        return await self._storage.list_agents(tenant_id)

    async def get(self, agent_id: AgentId) -> Agent:
        agent = self.directory.get(agent_id) or await self._storage.get_agent(agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id}")
        return agent

    async def sign_in(self, login: str, password: str) -> tuple[str, Agent]:
        agent = await self._storage.get_agent_by_login(login)
        if agent is None or not agent.active or not verify_password(password, agent.password_hash):
            raise NotAuthenticated("unknown login or wrong password")
        token = await self.issue_token(agent.tenant_id, "agent", agent.agent_id)
        return token, agent

    async def issue_token(
        self,
        tenant_id: TenantId,
        role: str,
        agent_id: AgentId | None = None,
        *,
        ttl: float | None = -1.0,
        token: str | None = None,
    ) -> str:
        """A new token (or register ``token``); ``ttl`` None = never expires."""
        if role not in ("agent", "admin"):
            raise InvalidRequest(f"unknown role {role!r}")
        if role == "agent" and agent_id is None:
            raise InvalidRequest("an agent token needs an agent")
        token = token or secrets.token_urlsafe(32)
        now = self._clock()
        lifetime = self._ttl if ttl is not None and ttl < 0 else ttl
        await self._storage.add_token(
            ApiToken(
                token_hash=token_hash(token),
                tenant_id=tenant_id,
                role=role,
                agent_id=agent_id,
                created_at=now,
                expires_at=None if lifetime is None else now + lifetime,
            )
        )
        return token

    async def revoke(self, token: str) -> None:
        digest = token_hash(token)
        self._cache.pop(digest, None)
        await self._storage.revoke_token(digest)

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise NotAuthenticated("a token is required")
        digest = token_hash(token)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and (cached[1] is None or cached[1] > now):
            return cached[0]
        stored = await self._storage.get_token(digest)
        if stored is None or stored.revoked:
            raise NotAuthenticated("unknown or revoked token")
        if stored.expires_at is not None and stored.expires_at <= now:
            raise NotAuthenticated("token expired")
        agent = None
        if stored.agent_id is not None:
            agent = await self._storage.get_agent(stored.agent_id)
            if agent is None or not agent.active:
                raise Forbidden("this agent is no longer active")
        principal = Principal(stored.role, stored.tenant_id, agent)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (principal, stored.expires_at)
        return principal
