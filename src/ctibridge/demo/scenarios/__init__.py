"""Realistic Kazoo 4.x call-event sequences for the demo phone system.

Each scenario is a pure function ``(ctx, **params) -> list[Step]``. A :class:`Step` holds
the snake_case ``data`` of one blackhole call event (what ``kz_json:normalize`` makes of
the ecallmgr event) and how long after the previous step it happens. Ids come from
``ctx.rng`` and times from ``ctx.start_greg``, so one seed always gives the same events.

Shapes follow ``shared/reference/telephony.md`` §1.3/§1.6: one Call-ID per leg,
``call_direction`` relative to the switch, ``call_interaction_id`` shared by the legs of
one call, carrier legs marked by ``resource_type`` ``offnet-origination`` or
``offnet-termination``, ``other_leg_call_id`` pointing at the peer leg, and FreeSWITCH
hangup causes on CHANNEL_DESTROY.

Scenario timelines are written in whole seconds after the call starts; events within one
second get increasing sub-second offsets, so Kazoo's whole-second ``timestamp`` of each
event is ``start_greg`` plus the second the scenario names.

Modules: ``registry`` (``SCENARIOS`` by name); the scenarios by family, ``inbound``,
``ring_group``, ``transfers``, ``outbound`` (click-to-dial included) and ``internal``;
``script`` (:class:`ScenarioContext`, :class:`Step` and the event builder) and ``legs``
(the legs scenarios are made of) under them; ``wire`` (blackhole and 3.x message forms).
"""
