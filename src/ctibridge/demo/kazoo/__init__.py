"""A Kazoo-compatible phone system on one local port: crossbar REST and blackhole websocket.

It is the demo PBX and the fake Kazoo of the tests (one implementation). It speaks the
documented protocols over real sockets (reference §1.2, §1.3, §1.5) and is driven through a
Python control plane: accounts, users, devices, :meth:`KazooServer.publish` of call events
(which also keeps the live channel table that ``GET .../channels`` lists), the old 3.x
event format, dropping sockets, expiring tokens, and logs of what clients sent.

Modules: ``server`` (:class:`KazooServer`: lifecycle, control plane, routes), ``state``
(accounts, tokens and request logs, the public records), ``blackhole`` (the websocket hub)
and ``frames`` (its messages), the crossbar REST resources ``accounts`` (api_auth, users,
devices), ``channel_actions`` (channels: list, hang up, transfer, hold), ``quickcall`` and
``recordings`` over ``crossbar`` (auth, request log, JSON envelopes), ``channels`` (the live
channel table) and ``events`` (call event data).
"""
