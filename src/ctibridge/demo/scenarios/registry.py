"""Every demo scenario by name."""

from __future__ import annotations

from collections.abc import Callable

from ctibridge.demo.scenarios.inbound import (
    inbound_answered,
    inbound_hold,
    inbound_missed,
    inbound_voicemail,
    recorded_inbound,
)
from ctibridge.demo.scenarios.internal import internal_answered, internal_missed
from ctibridge.demo.scenarios.outbound import click_to_dial, outbound_answered, outbound_busy
from ctibridge.demo.scenarios.ring_group import ring_group
from ctibridge.demo.scenarios.script import Step
from ctibridge.demo.scenarios.transfers import (
    duplicate_destroy_after_move,
    inbound_attended_transfer,
    inbound_blind_transfer,
)

__all__ = ["SCENARIOS", "ScenarioFn"]

ScenarioFn = Callable[..., list[Step]]

SCENARIOS: dict[str, ScenarioFn] = {
    "inbound_answered": inbound_answered,
    "inbound_missed": inbound_missed,
    "inbound_voicemail": inbound_voicemail,
    "inbound_hold": inbound_hold,
    "inbound_blind_transfer": inbound_blind_transfer,
    "inbound_attended_transfer": inbound_attended_transfer,
    "ring_group": ring_group,
    "outbound_answered": outbound_answered,
    "outbound_busy": outbound_busy,
    "internal_answered": internal_answered,
    "internal_missed": internal_missed,
    "click_to_dial": click_to_dial,
    "recorded_inbound": recorded_inbound,
    "duplicate_destroy_after_move": duplicate_destroy_after_move,
}
"""Every scenario by name."""
