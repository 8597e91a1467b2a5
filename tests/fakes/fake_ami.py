"""A fake Asterisk manager interface (AMI) over real TCP on 127.0.0.1, with a control plane.

It speaks the wire format by hand (it does not use ``ctibridge.protocols.ami``, the code
under test): the ``Asterisk Call Manager/11.0.0`` banner, ``Response: Success``/``Error``
replies echoing ``ActionID``, plain and MD5 (``Challenge``) logins, the login's ``Events``
class mask, ``Filter`` include/exclude regexes (POSIX ``[[:space:]]`` and ``.`` across
lines, like Asterisk's ``regexec``), ``CoreShowChannels`` as an ``EventList``, ``Ping`` and
``Logoff``. A refused login gets ``Authentication failed`` and the socket is closed, as
Asterisk does.

Control plane: ``reset()``, ``set_response(action, headers | None)`` (``None``: never
answer), ``set_channels(...)`` (the resync listing, with events to slip in the middle of
it), ``set_banner()``, ``requests()`` (every action received), ``push(bytes)`` (raw, to
every logged-in client), ``push_event(headers)`` and ``replay(capture)`` (events, through
each client's mask and filters), ``drop()`` (cut every connection), ``available = False``
(the PBX is down: every new connection is closed at once).

Call control: ``Originate`` is answered "queued" (``Async``), then plays what
``set_originate(capture=..., failure=...)`` scripted: a genuine capture's events with its
agent channel renamed to the action's ``ChannelId`` and its request variable set to the
action's ``CTIBRIDGE_REQ`` (so the call is the one we asked for), or an
``OriginateResponse: Failure`` with a ``Reason``. ``Hangup``, ``BlindTransfer``, ``Atxfer``,
``Getvar`` and ``PlayDTMF`` succeed on the channels ``set_live(...)`` named (by Uniqueid or
name, with their bridged peer) and answer Asterisk's own errors for any other.
``raw_requests()`` keeps repeated keys (``Variable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ctibridge.config import AsteriskSettings

__all__ = ["FakeAmi", "capture_events", "core_show_channel", "event_bytes", "split_capture"]

USERNAME = "ctibridge"
SECRET = "s3cret-ami"
BANNER = b"Asterisk Call Manager/11.0.0"

Headers = Mapping[str, str] | Sequence[tuple[str, str]]


def event_bytes(headers: Headers) -> bytes:
    """One AMI message on the wire: ``Key: Value`` CRLF lines and a blank line."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return "".join(f"{k}: {v}\r\n" for k, v in pairs).encode() + b"\r\n"


def core_show_channel(
    uniqueid: str,
    channel: str,
    *,
    linkedid: str | None = None,
    state: str = "Up",
    caller: tuple[str, str] = ("<unknown>", "<unknown>"),
    connected: tuple[str, str] = ("<unknown>", "<unknown>"),
    exten: str = "s",
    context: str = "internal",
    application: str = "Dial",
    bridge_id: str = "",
) -> dict[str, str]:
    """The fields of one ``CoreShowChannel`` item, as Asterisk 22 lists them."""
    states = {"Down": "0", "Ring": "4", "Ringing": "5", "Up": "6"}
    return {
        "Channel": channel,
        "ChannelState": states.get(state, "6"),
        "ChannelStateDesc": state,
        "CallerIDNum": caller[0],
        "CallerIDName": caller[1],
        "ConnectedLineNum": connected[0],
        "ConnectedLineName": connected[1],
        "Language": "en",
        "AccountCode": "",
        "Context": context,
        "Exten": exten,
        "Priority": "1",
        "Uniqueid": uniqueid,
        "Linkedid": linkedid or uniqueid,
        "BridgeId": bridge_id,
        "Application": application,
        "ApplicationData": "",
        "Duration": "00:00:05",
    }


def split_capture(data: bytes) -> tuple[bytes, list[bytes]]:
    """A raw AMI capture → (banner line, every message with its blank line)."""
    banner, _sep, rest = data.partition(b"\r\n")
    return banner, [chunk + b"\r\n\r\n" for chunk in rest.split(b"\r\n\r\n") if chunk.strip()]


def capture_events(capture: Path) -> list[bytes]:
    """The event messages of a capture file, byte for byte."""
    _banner, messages = split_capture(capture.read_bytes())
    return [m for m in messages if m.startswith(b"Event:")]


def _headers(message: bytes) -> list[tuple[str, str]]:
    out = []
    for line in message.decode(errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return out


def _posix_to_python(regex: str) -> re.Pattern[str]:
    """Asterisk compiles filters as POSIX EREs (``.`` crosses lines); enough of it for us."""
    return re.compile(regex.replace("[[:space:]]", r"\s"), re.DOTALL)


@dataclasses.dataclass(eq=False)
class _Client:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    challenge: str | None = None
    mask: frozenset[str] | None = None
    """Event classes the client asked for; None: all (``Events: on``)."""
    include: list[re.Pattern[str]] = dataclasses.field(default_factory=list)
    exclude: list[re.Pattern[str]] = dataclasses.field(default_factory=list)

    def wants(self, message: bytes) -> bool:
        fields = dict((k.lower(), v) for k, v in _headers(message))
        classes = {c.strip() for c in fields.get("privilege", "").split(",")} - {"all", ""}
        if self.mask is not None and not classes & self.mask:
            return False
        text = message.decode(errors="replace")
        if self.include and not any(p.search(text) for p in self.include):
            return False
        return not any(p.search(text) for p in self.exclude)


class FakeAmi:
    """One fake Asterisk; ``async with FakeAmi() as ami:`` listens on 127.0.0.1, port 0."""

    def __init__(self, *, username: str = USERNAME, secret: str = SECRET) -> None:
        self.username = username
        self.secret = secret
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.reset()

    # -- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self.drop()
        if self._tasks:  # closing our end ends each session task at its next read
            await asyncio.wait(list(self._tasks), timeout=5)
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def settings(self, **overrides: Any) -> AsteriskSettings:
        """Connector settings pointing here, with short test timings."""
        base = AsteriskSettings(
            enabled=True,
            host="127.0.0.1",
            port=self.port,
            username=self.username,
            secret=self.secret,
            reconnect_initial=0.01,
            reconnect_max=0.05,
            request_timeout=2.0,
        )
        return dataclasses.replace(base, **overrides)

    # -- control plane ----------------------------------------------------------------

    def reset(self) -> None:
        self._requests: list[dict[str, str]] = []
        self._raw: list[list[tuple[str, str]]] = []
        self._live_channels: dict[str, str] = {}
        self._originate_capture: Path | None = None
        self._originate_failure: str | None = None
        self._responses: dict[str, Headers | None] = {}
        self._channels: list[dict[str, str]] = []
        self._during_listing: list[bytes] = []
        self._banner = BANNER
        self.connections = 0
        self.available = True
        """False: every new connection is closed at once (the PBX is down)."""

    def set_banner(self, line: bytes) -> None:
        self._banner = line

    def set_response(self, action: str, headers: Headers | None) -> None:
        """Answer ``action`` with ``headers`` (ActionID added) from now on; None: stay silent."""
        self._responses[action.lower()] = headers

    def set_channels(
        self, channels: Sequence[Mapping[str, str]], *, during_listing: Sequence[Headers] = ()
    ) -> None:
        """The ``CoreShowChannels`` listing, and events sent between its first two items."""
        self._channels = [dict(c) for c in channels]
        self._during_listing = [event_bytes(e) for e in during_listing]

    def requests(self) -> list[dict[str, str]]:
        """Every action received, in order (repeated keys: the last value)."""
        return list(self._requests)

    def raw_requests(self) -> list[list[tuple[str, str]]]:
        """Every action received, in order, with repeated keys."""
        return [list(r) for r in self._raw]

    def set_live(self, channels: Mapping[str, str]) -> None:
        """Channels (Uniqueid or name) the control actions may act on → their bridged peer's
        channel name ("" when not bridged)."""
        self._live_channels = dict(channels)

    def set_originate(self, *, capture: Path | None = None, failure: str | None = None) -> None:
        """What an ``Originate`` does after "queued": replay ``capture`` (the call), or fail
        with ``OriginateResponse`` ``Reason: failure``; neither: nothing more."""
        self._originate_capture = capture
        self._originate_failure = failure

    def actions(self) -> list[str]:
        return [r.get("Action", "") for r in self._requests]

    @property
    def logged_in(self) -> int:
        return sum(c.logged_in for c in self._clients)

    async def push(self, data: bytes) -> None:
        """Raw bytes to every logged-in client (no mask, no filter)."""
        for client in self._live():
            client.writer.write(data)
        await self._drain()

    async def push_event(self, headers: Headers) -> int:
        """One event to every logged-in client whose mask and filters let it through; to
        how many."""
        return await self._send_events([event_bytes(headers)])

    async def replay(self, capture: Path) -> int:
        """Send the events of a genuine capture (not its banner and replies); how many were
        let through the clients' masks and filters."""
        return await self._send_events(capture_events(capture))

    async def drop(self) -> None:
        """Cut every client connection."""
        for client in list(self._clients):
            client.writer.close()
        self._clients.clear()

    # -- serving ----------------------------------------------------------------------

    def _live(self) -> list[_Client]:
        return [c for c in self._clients if c.logged_in and not c.writer.is_closing()]

    async def _drain(self) -> None:
        for client in self._live():
            with contextlib.suppress(ConnectionError):
                await client.writer.drain()

    async def _send_events(self, messages: Sequence[bytes]) -> int:
        """Each message to the clients that want it; how many messages went to one at least
        (with one client: how many went through its mask and filters)."""
        sent = 0
        for message in messages:
            wanted = [c for c in self._live() if c.wants(message)]
            for client in wanted:
                client.writer.write(message)
            sent += bool(wanted)
        await self._drain()
        return sent

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client = _Client(writer)
        self._clients.add(client)
        self.connections += 1
        try:
            if not self.available:
                return
            writer.write(self._banner + b"\r\n")
            while not writer.is_closing():
                block = await reader.readuntil(b"\r\n\r\n")
                pairs = _headers(block)
                action = dict(pairs)
                self._raw.append(pairs)
                self._requests.append(action)
                await self._answer(client, action)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._clients.discard(client)
            writer.close()
            self._tasks.discard(task)

    def _reply(self, client: _Client, action: Mapping[str, str], headers: Headers) -> None:
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        response, rest = pairs[:1], pairs[1:]
        action_id = [("ActionID", action["ActionID"])] if "ActionID" in action else []
        client.writer.write(event_bytes([*response, *action_id, *rest]))

    async def _answer(self, client: _Client, action: Mapping[str, str]) -> None:
        name = action.get("Action", "").lower()
        if name in self._responses:
            headers = self._responses[name]
            if headers is not None:
                self._reply(client, action, headers)
                self._after_override(client, name, headers)
            return
        if not client.logged_in and name not in ("login", "challenge", "logoff"):
            self._reply(client, action, {"Response": "Error", "Message": "Permission denied"})
            return
        handler = getattr(self, f"_on_{name}", None)
        if handler is None:
            self._reply(client, action, {"Response": "Error", "Message": "Invalid/unknown command"})
            return
        handler(client, action)

    def _after_override(self, client: _Client, name: str, headers: Headers) -> None:
        status = dict(headers.items() if isinstance(headers, Mapping) else headers)
        if name == "login":
            if status.get("Response") == "Success":
                client.logged_in = True
            else:
                client.writer.close()

    def _on_challenge(self, client: _Client, action: Mapping[str, str]) -> None:
        client.challenge = str(secrets.randbelow(10**9))
        self._reply(client, action, {"Response": "Success", "Challenge": client.challenge})

    def _on_login(self, client: _Client, action: Mapping[str, str]) -> None:
        if action.get("AuthType", "").lower() == "md5":
            expected = hashlib.md5(f"{client.challenge}{self.secret}".encode()).hexdigest()
            ok = client.challenge is not None and action.get("Key") == expected
        else:
            ok = action.get("Secret") == self.secret
        if not ok or action.get("Username") != self.username:
            self._reply(client, action, {"Response": "Error", "Message": "Authentication failed"})
            client.writer.close()
            return
        events = action.get("Events", "on").strip().lower()
        if events in ("off", "no", "false"):
            client.mask = frozenset()
        elif events not in ("on", "yes", "true", "all"):
            client.mask = frozenset(c.strip() for c in events.split(","))
        client.logged_in = True
        self._reply(client, action, {"Response": "Success", "Message": "Authentication accepted"})
        client.writer.write(
            event_bytes(
                {
                    "Event": "FullyBooted",
                    "Privilege": "system,all",
                    "Uptime": "6",
                    "LastReload": "6",
                    "Status": "Fully Booted",
                }
            )
        )

    def _on_filter(self, client: _Client, action: Mapping[str, str]) -> None:
        regex = action.get("Filter", "")
        if action.get("Operation", "Add").lower() != "add" or not regex:
            self._reply(client, action, {"Response": "Error", "Message": "Unknown operation"})
            return
        target = client.exclude if regex.startswith("!") else client.include
        target.append(_posix_to_python(regex.removeprefix("!")))
        self._reply(client, action, {"Response": "Success", "Message": "Filter Added Successfully"})

    def _on_coreshowchannels(self, client: _Client, action: Mapping[str, str]) -> None:
        self._reply(
            client,
            action,
            {"Response": "Success", "EventList": "start", "Message": "Channels will follow"},
        )
        action_id = action.get("ActionID", "")
        items = [
            event_bytes({"Event": "CoreShowChannel", "ActionID": action_id, **channel})
            for channel in self._channels
        ]
        for index, item in enumerate(items):
            client.writer.write(item)
            if index == 0:
                self._write_during_listing(client)
        if not items:
            self._write_during_listing(client)
        complete = {
            "Event": "CoreShowChannelsComplete",
            "ActionID": action_id,
            "EventList": "Complete",
            "ListItems": str(len(items)),
        }
        client.writer.write(event_bytes(complete))

    def _write_during_listing(self, client: _Client) -> None:
        for message in self._during_listing:
            if client.wants(message):
                client.writer.write(message)

    def _on_ping(self, client: _Client, action: Mapping[str, str]) -> None:
        self._reply(
            client, action, {"Response": "Success", "Ping": "Pong", "Timestamp": "1795267463.5"}
        )

    # -- call control -------------------------------------------------------------------

    def _on_originate(self, client: _Client, action: Mapping[str, str]) -> None:
        if not action.get("Channel") or not action.get("Exten"):
            self._reply(client, action, {"Response": "Error", "Message": "Channel not specified"})
            return
        self._reply(
            client, action, {"Response": "Success", "Message": "Originate successfully queued"}
        )
        messages: list[bytes] = []
        if self._originate_failure is not None:
            messages.append(self._originate_response(action, self._originate_failure))
        elif self._originate_capture is not None:
            messages = self._originated(action, self._originate_capture)
        for message in messages:
            if client.wants(message):
                client.writer.write(message)

    def _originated(self, action: Mapping[str, str], capture: Path) -> list[bytes]:
        """The capture's events, renamed to the call this action asked for."""
        events = capture_events(capture)
        first = next(e for e in events if e.startswith(b"Event: Newchannel"))
        old_id = dict(_headers(first))["Uniqueid"].encode()
        new_id = action.get("ChannelId", old_id.decode()).encode()
        name, value = self._request_variable()
        out = []
        for event in events:
            event = event.replace(old_id, new_id)
            event = re.sub(
                rb"Variable: CTI_REQUEST\r\nValue: [^\r]*",
                f"Variable: {name}\r\nValue: {value}".encode(),
                event,
            )
            if event.startswith(b"Event: OriginateResponse"):
                event = re.sub(
                    rb"ActionID: [^\r]*", f"ActionID: {action['ActionID']}".encode(), event
                )
            out.append(event)
        return out

    def _request_variable(self) -> tuple[str, str]:
        for key, item in reversed(self._raw[-1]):
            if key == "Variable" and "CTIBRIDGE_REQ=" in item:
                name, _sep, value = item.partition("=")
                return name, value
        return "CTI_REQUEST", "none"

    def _originate_response(self, action: Mapping[str, str], reason: str) -> bytes:
        return event_bytes(
            {
                "Event": "OriginateResponse",
                "Privilege": "call,all",
                "ActionID": action.get("ActionID", ""),
                "Response": "Failure",
                "Channel": action.get("Channel", ""),
                "Context": action.get("Context", ""),
                "Exten": action.get("Exten", ""),
                "Reason": reason,
                "Uniqueid": "<null>",
                "CallerIDNum": "<unknown>",
                "CallerIDName": "<unknown>",
            }
        )

    def _on_leg(
        self, client: _Client, action: Mapping[str, str], done: Headers, missing: str
    ) -> None:
        if action.get("Channel", "") in self._live_channels:
            self._reply(client, action, done)
        else:
            self._reply(client, action, {"Response": "Error", "Message": missing})

    def _on_hangup(self, client: _Client, action: Mapping[str, str]) -> None:
        done = {"Response": "Success", "Message": "Channel Hungup"}
        self._on_leg(client, action, done, "No such channel")

    def _on_blindtransfer(self, client: _Client, action: Mapping[str, str]) -> None:
        done = {"Response": "Success", "Message": "Transfer succeeded"}
        self._on_leg(client, action, done, "No such channel")

    def _on_atxfer(self, client: _Client, action: Mapping[str, str]) -> None:
        done = {"Response": "Success", "Message": "Atxfer successfully queued"}
        self._on_leg(client, action, done, "No such channel")

    def _on_playdtmf(self, client: _Client, action: Mapping[str, str]) -> None:
        done = {"Response": "Success", "Message": "DTMF successfully queued"}
        if action.get("Channel", "") in self._live_channels.values():
            self._reply(client, action, done)
        else:
            self._reply(client, action, {"Response": "Error", "Message": "Channel not found"})

    def _on_getvar(self, client: _Client, action: Mapping[str, str]) -> None:
        peer = self._live_channels.get(action.get("Channel", ""), "")
        value = peer if action.get("Variable") == "BRIDGEPEER" else ""
        done = {"Response": "Success", "Variable": action.get("Variable", ""), "Value": value}
        self._on_leg(client, action, done, "No such channel")

    def _on_logoff(self, client: _Client, action: Mapping[str, str]) -> None:
        self._reply(client, action, {"Response": "Goodbye", "Message": "Thanks for all the fish."})
        client.writer.close()
