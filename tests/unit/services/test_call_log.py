"""Seed 002's association rules and subject format, one table."""

from __future__ import annotations

import pytest

from ctibridge.callstate.normaliser import Normaliser
from ctibridge.crm.base import CrmRecord, CrmRef
from ctibridge.services.call_log import AgentContext, associate, call_logs, subject
from ctibridge.storage.base import Agent, StoredCall
from ctibridge.types import AgentId, TenantId
from tests.unit.callstate import test_normaliser as scenarios

CONTACT = CrmRef("Contact", "003A")
LEAD = CrmRef("Lead", "00QB")
ACCOUNT = CrmRef("Account", "001C")


def _call(build: object) -> StoredCall:
    norm = Normaliser()
    norm.apply_many(build().events)  # type: ignore[operator]
    (call,) = norm.calls()
    return StoredCall(call)


def _match(ref: CrmRef) -> CrmRecord:
    return CrmRecord(ref, name=ref.record_id)


@pytest.mark.parametrize(
    ("context", "who", "what"),
    [
        (AgentContext(), None, None),
        (AgentContext(matches=(_match(CONTACT),)), CONTACT, None),
        (AgentContext(matches=(_match(CONTACT), _match(LEAD))), None, None),
        (AgentContext(matches=(_match(CONTACT), _match(LEAD)), chosen=LEAD), LEAD, None),
        (AgentContext(clicked=ACCOUNT), None, ACCOUNT),
        (AgentContext(clicked=ACCOUNT, chosen=CONTACT), CONTACT, None),
        (AgentContext(matches=(_match(CONTACT),), chosen=ACCOUNT), None, ACCOUNT),
        (AgentContext(chosen=LEAD), LEAD, None),  # none matched, New created a Lead
    ],
)
def test_association_rules(context: AgentContext, who: CrmRef | None, what: CrmRef | None) -> None:
    call = _call(scenarios.inbound_answered).call
    assert associate(call, context) == (who, what)


def test_internal_calls_are_never_associated() -> None:
    call = _call(scenarios.internal).call
    assert associate(call, AgentContext(chosen=CONTACT, matches=(_match(CONTACT),))) == (None, None)


def test_subject_reads_like_the_seed() -> None:
    call = _call(scenarios.inbound_answered).call
    text = subject(
        call, timezone="Europe/London", remote_number="+447814256404", remote_name="Fred Bloggs"
    )
    assert text == "Inbound Call at 22:13:20 Europe/London from 07814256404 (Fred Bloggs)"
    out = _call(scenarios.outbound).call
    text = subject(out, timezone="Asia/Hong_Kong", remote_number="01632960123", remote_name=None)
    assert text == "Outbound Call at 06:13:20 Asia/Hong_Kong to 01632960123"


def _agents(*exts: str) -> dict[AgentId, Agent]:
    return {
        AgentId(f"agent-{e}"): Agent(
            AgentId(f"agent-{e}"),
            TenantId("acc1"),
            f"Agent {e}",
            extension=e,
            crm_user_id=f"005{e}",
            timezone="Europe/London",
        )
        for e in exts
    }


def _resolve(ref: object) -> AgentId | None:
    return AgentId(f"agent-{ref.extension}")  # type: ignore[attr-defined]


def test_a_transferred_call_yields_one_log_per_agent_with_their_own_choices() -> None:
    stored = _call(scenarios.blind_transfer)
    contexts = {
        AgentId("agent-101"): AgentContext(chosen=CONTACT),
        AgentId("agent-102"): AgentContext(matches=(_match(LEAD),)),
    }
    logs = call_logs(stored, _agents("101", "102"), contexts, resolve=_resolve)
    assert [(log.agent_id, log.who, log.disposition) for log in logs] == [
        ("agent-101", CONTACT, "Transferred"),
        ("agent-102", LEAD, "Answered"),
    ]
    first, second = logs
    assert (first.duration_seconds, second.duration_seconds) == (17, 35)
    assert first.key == f"{stored.call.call_id}:agent-101" and first.crm_user_id == "005101"
    assert {log.call_type for log in logs} == {"Inbound"}


def test_a_missed_call_is_logged_for_each_agent_rung() -> None:
    norm = Normaliser()
    norm.apply_many(scenarios.ring_group().events[:2])
    stored = _call(scenarios.inbound_missed)
    stored = StoredCall(stored.call, rung=(AgentId("agent-101"),))
    logs = call_logs(stored, _agents("101"), {}, resolve=_resolve)
    assert [(log.agent_id, log.disposition, log.duration_seconds) for log in logs] == [
        ("agent-101", "Missed", 0)
    ]


def test_no_log_before_the_call_ends() -> None:
    norm = Normaliser()
    norm.apply_many(scenarios.inbound_answered().events[:4])
    (call,) = norm.calls()
    assert call_logs(StoredCall(call), _agents("101"), {}, resolve=_resolve) == []
