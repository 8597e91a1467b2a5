"""Which of our agents a PBX identity belongs to: an in-memory index over the agents table."""

from __future__ import annotations

from collections.abc import Iterable

from ctibridge.callstate.events import AgentRef
from ctibridge.storage.base import Agent
from ctibridge.types import AgentId

__all__ = ["AgentDirectory"]


class AgentDirectory:
    """Resolve ``AgentRef`` → ``AgentId`` per tenant by PBX user id, device id, extension."""

    def __init__(self, agents: Iterable[Agent] = ()) -> None:
        self._by_key: dict[tuple[str, str, str], AgentId] = {}
        self._agents: dict[AgentId, Agent] = {}
        self.replace(agents)

    def replace(self, agents: Iterable[Agent]) -> None:
        self._by_key.clear()
        self._agents.clear()
        for agent in agents:
            self.put(agent)

    def put(self, agent: Agent) -> None:
        self.remove(agent.agent_id)
        if not agent.active:
            return
        self._agents[agent.agent_id] = agent
        tenant = agent.tenant_id
        if agent.pbx_user_id:
            self._by_key[tenant, "user", agent.pbx_user_id] = agent.agent_id
        for device in agent.device_ids:
            self._by_key[tenant, "device", device] = agent.agent_id
        if agent.extension:
            self._by_key[tenant, "ext", agent.extension] = agent.agent_id

    def remove(self, agent_id: AgentId) -> None:
        if self._agents.pop(agent_id, None) is not None:
            for key in [k for k, v in self._by_key.items() if v == agent_id]:
                del self._by_key[key]

    def get(self, agent_id: AgentId) -> Agent | None:
        return self._agents.get(agent_id)

    def resolve(self, tenant_id: str, ref: AgentRef) -> AgentId | None:
        by_key = self._by_key
        if ref.user_id and (found := by_key.get((tenant_id, "user", ref.user_id))):
            return found
        if ref.device_id and (found := by_key.get((tenant_id, "device", ref.device_id))):
            return found
        if ref.extension:
            return by_key.get((tenant_id, "ext", ref.extension))
        return None

    def resolve_all(self, tenant_id: str, refs: Iterable[AgentRef]) -> tuple[AgentId, ...]:
        out: list[AgentId] = []
        for ref in refs:
            found = self.resolve(tenant_id, ref)
            if found is not None and found not in out:
                out.append(found)
        return tuple(out)
