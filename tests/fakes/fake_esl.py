"""A fake FreeSWITCH event socket (inbound ESL) over real TCP on 127.0.0.1, with a control plane.

It speaks the wire format by hand (it does not use ``ctibridge.protocols.esl``, the code
under test): ``Content-Type: auth/request`` on connect, ``auth <password>`` answered by a
``command/reply`` (``+OK accepted``, or ``-ERR invalid`` then a ``text/disconnect-notice``
and a close), ``event plain <names>`` (only those events are sent from then on; ``ALL``
for every one), ``api <command>`` answered by an ``api/response`` with a ``Content-Length``
body (``show channels as json``, ``status``), ``exit``.

Control plane: ``reset()``, ``set_response(command, frame | None)`` (``None``: never
answer), ``set_channels(rows, during_listing=...)`` (``show channels as json`` and events
sent just before its answer), ``set_greeting()``, ``requests()`` (every command block
received), ``push(bytes)`` (raw, to every authenticated client), ``push_event(headers)`` and
``replay(capture)`` (events, through each client's subscription), ``drop()``,
``available = False`` (the PBX is down: every new connection is closed at once).

Call control: ``bgapi <command>`` (with its ``Job-UUID`` header) is answered ``+OK
Job-UUID: …``. A ``bgapi originate`` then plays what ``set_originate(capture=...,
failure=...)`` scripted: a genuine capture's events with its agent leg renamed to the
command's ``origination_uuid``, its request variable set to the command's ``ctibridge_req``
and its ``BACKGROUND_JOB`` to the command's job; or only a ``BACKGROUND_JOB`` whose result is
``-ERR <failure>``. ``api uuid_kill|uuid_hold|uuid_transfer|uuid_send_dtmf|uuid_getvar``
answer ``+OK`` (``uuid_getvar … bridge_uuid``: the peer) on the legs ``set_live(...)`` named,
and ``-ERR No such channel!`` on any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ctibridge.config import FreeswitchSettings

__all__ = ["FakeEsl", "capture_events", "event_frame", "frame", "split_capture"]

PASSWORD = "ClueCon-test"
AUTH_REQUEST = b"Content-Type: auth/request\n\n"
BYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
STATUS = (
    "UP 0 years, 0 days, 0 hours, 1 minute, 2 seconds, 3 milliseconds, 4 microseconds\n"
    "FreeSWITCH (Version 1.10.12 -release 64bit) is ready\n"
)


def frame(content_type: str, body: bytes = b"", **headers: str) -> bytes:
    """One frame from the switch: headers (``Reply_Text`` → ``Reply-Text``), blank, body."""
    lines = [(k.replace("_", "-"), v) for k, v in headers.items()]
    if body:
        lines.insert(0, ("Content-Length", str(len(body))))
    lines.insert(1 if body else 0, ("Content-Type", content_type))
    return "".join(f"{k}: {v}\n" for k, v in lines).encode() + b"\n" + body


def event_frame(headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> bytes:
    """A ``text/event-plain`` frame: URL-encoded ``Key: value`` lines in the body."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    body = "".join(f"{k}: {quote(v, safe='')}\n" for k, v in pairs).encode() + b"\n"
    return frame("text/event-plain", body)


def split_capture(data: bytes) -> list[bytes]:
    """A raw ESL capture → its frames, each with its header block and body."""
    frames, at = [], 0
    while at < len(data):
        end = data.index(b"\n\n", at) + 2
        head = data[at:end]
        length = 0
        for line in head.decode().splitlines():
            if line.lower().startswith("content-length:"):
                length = int(line.partition(":")[2])
        frames.append(data[at : end + length])
        at = end + length
        while data[at : at + 1] == b"\n":  # stray blank lines between frames
            at += 1
    return frames


def capture_events(capture: Path) -> list[bytes]:
    """The event frames of a capture file, byte for byte."""
    return [f for f in split_capture(capture.read_bytes()) if _event_name(f) is not None]


def _event_name(raw: bytes) -> str | None:
    head, _sep, body = raw.partition(b"\n\n")
    if b"text/event-plain" not in head:
        return None
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("Event-Name: "):
            return line.removeprefix("Event-Name: ")
    return None


@dataclasses.dataclass(eq=False)
class _Client:
    writer: asyncio.StreamWriter
    authenticated: bool = False
    events: frozenset[str] = frozenset()

    def wants(self, raw: bytes) -> bool:
        name = _event_name(raw)
        return name is not None and ("ALL" in self.events or name in self.events)


class FakeEsl:
    """One fake FreeSWITCH; ``async with FakeEsl() as fs:`` listens on 127.0.0.1, port 0."""

    def __init__(self, *, password: str = PASSWORD) -> None:
        self.password = password
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.reset()

    # -- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> FakeEsl:
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

    def settings(self, **overrides: Any) -> FreeswitchSettings:
        """Connector settings pointing here, with short test timings."""
        base = FreeswitchSettings(
            enabled=True,
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            reconnect_initial=0.01,
            reconnect_max=0.05,
            request_timeout=2.0,
        )
        return dataclasses.replace(base, **overrides)

    # -- control plane ----------------------------------------------------------------

    def reset(self) -> None:
        self._requests: list[str] = []
        self._responses: dict[str, bytes | None] = {}
        self._rows: list[dict[str, Any]] = []
        self._during_listing: list[bytes] = []
        self._greeting = AUTH_REQUEST
        self._live_legs: dict[str, str] = {}
        self._originate_capture: Path | None = None
        self._originate_failure: str | None = None
        self.connections = 0
        self.available = True
        """False: every new connection is closed at once (the PBX is down)."""

    def set_greeting(self, data: bytes) -> None:
        self._greeting = data

    def set_response(self, command: str, data: bytes | None) -> None:
        """Answer commands starting with ``command`` with ``data``; None: stay silent."""
        self._responses[command] = data

    def set_channels(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        during_listing: Sequence[Mapping[str, str]] = (),
    ) -> None:
        """The rows of ``show channels as json``, and events sent just before its answer."""
        self._rows = [dict(r) for r in rows]
        self._during_listing = [event_frame(e) for e in during_listing]

    def set_live(self, legs: Mapping[str, str]) -> None:
        """Legs the uuid_* commands may act on → their bridged peer's uuid ("": none)."""
        self._live_legs = dict(legs)

    def set_originate(self, *, capture: Path | None = None, failure: str | None = None) -> None:
        """What a ``bgapi originate`` does: replay ``capture`` (the call), or end its job
        with ``-ERR <failure>``; neither: nothing more."""
        self._originate_capture = capture
        self._originate_failure = failure

    def requests(self) -> list[str]:
        """Every command block received, in order (``auth …``, ``event plain …``, ``api …``)."""
        return list(self._requests)

    @property
    def authenticated(self) -> int:
        return sum(c.authenticated for c in self._clients)

    async def push(self, data: bytes) -> None:
        """Raw bytes to every authenticated client (no subscription check)."""
        for client in self._live():
            client.writer.write(data)
        await self._drain()

    async def push_event(self, headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> int:
        """One event to every authenticated client subscribed to it; to how many."""
        return await self._send_events([event_frame(headers)])

    async def replay(self, capture: Path) -> int:
        """Send the event frames of a genuine capture, byte for byte; how many were let
        through the clients' subscriptions."""
        return await self._send_events(capture_events(capture))

    async def drop(self) -> None:
        for client in list(self._clients):
            client.writer.close()
        self._clients.clear()

    # -- serving ----------------------------------------------------------------------

    def _live(self) -> list[_Client]:
        return [c for c in self._clients if c.authenticated and not c.writer.is_closing()]

    async def _drain(self) -> None:
        for client in self._live():
            with contextlib.suppress(ConnectionError):
                await client.writer.drain()

    async def _send_events(self, frames: Sequence[bytes]) -> int:
        sent = 0
        for raw in frames:
            wanted = [c for c in self._live() if c.wants(raw)]
            for client in wanted:
                client.writer.write(raw)
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
            writer.write(self._greeting)
            while not writer.is_closing():
                block = (await reader.readuntil(b"\n\n")).decode(errors="replace").strip()
                self._requests.append(block)
                self._answer(client, block)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._clients.discard(client)
            writer.close()
            self._tasks.discard(task)

    def _answer(self, client: _Client, command: str) -> None:
        for prefix, data in self._responses.items():
            if command.startswith(prefix):
                if data is not None:
                    client.writer.write(data)
                return
        verb, _sep, args = command.partition(" ")
        if verb == "auth":
            self._on_auth(client, args)
        elif not client.authenticated:
            client.writer.write(frame("command/reply", Reply_Text="-ERR command not found"))
        elif verb == "event":
            self._on_event(client, args)
        elif verb == "api" and args.startswith("uuid_"):
            self._on_uuid(client, args)
        elif verb == "api":
            self._on_api(client, args)
        elif verb == "bgapi":
            self._on_bgapi(client, args)
        elif verb == "exit":
            client.writer.write(frame("command/reply", Reply_Text="+OK bye"))
            self._disconnect(client)
        else:
            client.writer.write(frame("command/reply", Reply_Text="-ERR command not found"))

    def _disconnect(self, client: _Client) -> None:
        client.writer.write(frame("text/disconnect-notice", BYE))
        client.writer.close()

    def _on_auth(self, client: _Client, password: str) -> None:
        if password != self.password:
            client.writer.write(frame("command/reply", Reply_Text="-ERR invalid"))
            self._disconnect(client)
            return
        client.authenticated = True
        client.writer.write(frame("command/reply", Reply_Text="+OK accepted"))

    def _on_event(self, client: _Client, args: str) -> None:
        fmt, _sep, names = args.partition(" ")
        if fmt != "plain":
            client.writer.write(frame("command/reply", Reply_Text="-ERR unsupported format"))
            return
        client.events = client.events | frozenset(names.split())
        client.writer.write(frame("command/reply", Reply_Text="+OK event listener enabled plain"))

    def _on_api(self, client: _Client, args: str) -> None:
        if args == "show channels as json":
            for raw in self._during_listing:
                if client.wants(raw):
                    client.writer.write(raw)
            listing: dict[str, Any] = {"row_count": len(self._rows)}
            if self._rows:
                listing["rows"] = self._rows
            body = json.dumps(listing, indent=1).encode()
        elif args == "status":
            body = STATUS.encode()
        else:
            body = f"-ERR {args.partition(' ')[0]} Command not found!\n".encode()
        client.writer.write(frame("api/response", body))

    # -- call control ---------------------------------------------------------------------

    def _on_uuid(self, client: _Client, args: str) -> None:
        command, *words = args.split()
        legs = [w for w in words if w in self._live_legs]
        if command == "uuid_send_dtmf":
            legs = [w for w in words[:1] if w in self._live_legs.values()]
        if not legs:
            body = "-ERR No such channel!\n"
        elif command == "uuid_getvar" and words[1:] == ["bridge_uuid"]:
            body = self._live_legs[legs[0]] or "_undef_"
        else:
            body = "+OK\n"
        client.writer.write(frame("api/response", body.encode()))

    def _on_bgapi(self, client: _Client, args: str) -> None:
        line, _sep, header = args.partition("\n")
        job = header.partition(":")[2].strip()
        client.writer.write(frame("command/reply", Reply_Text=f"+OK Job-UUID: {job}", Job_UUID=job))
        command, _sep, rest = line.partition(" ")
        if command != "originate":
            return
        frames: list[bytes] = []
        if self._originate_failure is not None:
            frames.append(_job_frame(job, rest, f"-ERR {self._originate_failure}\n"))
        elif self._originate_capture is not None:
            frames = _originated(self._originate_capture, job, rest)
        for raw in frames:
            if client.wants(raw):
                client.writer.write(raw)


def _job_frame(job: str, arg: str, result: str) -> bytes:
    head = (
        f"Event-Name: BACKGROUND_JOB\nJob-UUID: {job}\nJob-Command: originate\n"
        f"Job-Command-Arg: {quote(arg, safe='')}\nContent-Length: {len(result)}\n\n"
    )
    return frame("text/event-plain", (head + result).encode())


def _originated(capture: Path, job: str, arg: str) -> list[bytes]:
    """The capture's events, renamed to the call this originate asked for."""
    found = dict(re.findall(r"(origination_uuid|ctibridge_req)=([^,}]*)", arg))
    bodies = [raw.partition(b"\n\n")[2].decode() for raw in capture_events(capture)]
    renames: dict[str, str] = {}
    for body in bodies:
        leg = found.get("origination_uuid")
        if _header(body, "Event-Name") == "CHANNEL_CREATE" and leg and leg not in renames.values():
            renames[_header(body, "Unique-ID")] = leg  # the first leg: the agent's
        if _header(body, "Event-Name") == "BACKGROUND_JOB":
            renames.setdefault(_header(body, "Job-UUID"), job)
    out = []
    for body in bodies:
        for old, new in renames.items():
            body = body.replace(old, new)
        body = re.sub(
            r"variable_cti_request: [^\n]*",
            f"variable_ctibridge_req: {found.get('ctibridge_req', '')}",
            body,
        )
        out.append(frame("text/event-plain", body.encode()))
    return out


def _header(body: str, name: str) -> str:
    for line in body.split("\n\n", 1)[0].splitlines():
        if line.startswith(f"{name}: "):
            return line.removeprefix(f"{name}: ")
    return ""
