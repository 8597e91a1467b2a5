"""Identifier types shared by every layer."""

from typing import NewType

__all__ = ["E164", "AgentId", "CallId", "LegId", "TenantId"]

TenantId = NewType("TenantId", str)
"""Our tenant: one PBX account (Kazoo account id) or one PBX for Asterisk/FreeSWITCH."""

AgentId = NewType("AgentId", str)
"""Our agent id (not the PBX user id)."""

CallId = NewType("CallId", str)
"""Our call id: stable for the whole call, across legs and transfers."""

LegId = NewType("LegId", str)
"""One channel (leg) on the phone system: Kazoo Call-ID, Asterisk Uniqueid, FreeSWITCH Unique-ID."""

E164 = NewType("E164", str)
"""A phone number in E.164 form, e.g. +441202528735."""
