"""Asterisk Manager Interface (AMI), sans I/O.

The server opens with a banner line ``Asterisk Call Manager/<version>``. After it, every
message is ``Key: Value`` lines (CRLF; a bare LF is tolerated) ended by a blank line. Keys
may repeat (``ChanVariable``, ``Variable``, ``Output``). Old Asterisk answers ``Command``
with ``Response: Follows``, raw output and ``--END COMMAND--``; that body is kept as text.

Framing faults (a wrong banner, a line without ``:``, a line or message over the limits of
:mod:`ctibridge.protocols.streams`, a cut message) raise :class:`FrameError`. Message
contents are not judged here: that is the mapper's business.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ctibridge.errors import FieldError, FrameError
from ctibridge.protocols import streams
from ctibridge.protocols.streams import GeneratorProtocol, chomp

__all__ = ["AmiMessage", "AmiProtocol", "md5_key"]

_BANNER = re.compile(r"Asterisk Call Manager/[0-9][0-9A-Za-z._-]*")
_FOLLOWS = b"Response: Follows"
_END_COMMAND = "--END COMMAND--"
_FOLLOWS_HEADERS = frozenset({"privilege", "actionid", "message"})
_ENCODING = "utf-8"

Headers = Sequence[tuple[str, str]] | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message: an event, a response, or an action we send."""

    headers: tuple[tuple[str, str], ...]
    output: str | None = None
    """Raw text of a legacy ``Response: Follows`` reply (before ``--END COMMAND--``)."""
    _index: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for key, value in self.headers:
            index.setdefault(key.lower(), value)
        object.__setattr__(self, "_index", index)

    @property
    def name(self) -> str:
        """The event name, else the response status, else the action name."""
        index = self._index
        return index.get("event") or index.get("response") or index.get("action") or ""

    @property
    def is_event(self) -> bool:
        return "event" in self._index

    @property
    def is_response(self) -> bool:
        return "response" in self._index and "event" not in self._index

    @property
    def action_id(self) -> str | None:
        return self._index.get("actionid")

    @property
    def channel_id(self) -> str | None:
        """The leg the message is about (``Uniqueid``), if any."""
        return self._index.get("uniqueid")

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (case-insensitive)."""
        return self._index.get(key.lower(), default)

    def get_all(self, key: str) -> list[str]:
        """Every value of a repeated ``key``, in order."""
        wanted = key.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    def variables(self, key: str = "ChanVariable") -> dict[str, str]:
        """``NAME=value`` lines of a repeated header as a dict (``ChanVariable``, ``Variable``)."""
        out: dict[str, str] = {}
        for item in self.get_all(key):
            name, sep, value = item.partition("=")
            if sep:
                out.setdefault(name, value)
        return out

    @classmethod
    def parse(cls, lines: Iterable[bytes], output: str | None = None) -> AmiMessage:
        """A message from its lines (terminators stripped). A line without ``:`` is a FrameError."""
        return cls(tuple(_split(line) for line in lines), output)

    @classmethod
    def build(cls, headers: Headers) -> AmiMessage:
        """A message to send. A value holding a line break is refused (header injection)."""
        pairs = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
        for key, value in pairs:
            if not key or any(c in key for c in ":\r\n") or "\r" in value or "\n" in value:
                raise FieldError(f"AMI header {key!r} cannot be sent safely")
        return cls(pairs)

    def serialize(self) -> bytes:
        text = "".join(f"{k}: {v}\r\n" for k, v in self.headers)
        if self.output is not None:
            text += f"{self.output}{_END_COMMAND}\r\n"
        return (text + "\r\n").encode(_ENCODING)

    def __bytes__(self) -> bytes:
        return self.serialize()


def _split(line: bytes) -> tuple[str, str]:
    text = line.decode(_ENCODING, errors="replace")
    key, sep, value = text.partition(":")
    if not sep or not key.strip():
        raise FrameError(f"AMI line without a key: {text[:60]!r}")
    return key, value[1:] if value.startswith(" ") else value


def md5_key(challenge: str, secret: str) -> str:
    """The ``Key`` of an MD5 login: hex MD5 of the challenge followed by the secret."""
    digest = hashlib.md5((challenge + secret).encode(_ENCODING), usedforsecurity=False)
    return digest.hexdigest()


class AmiProtocol(GeneratorProtocol[AmiMessage]):
    """One AMI client connection: bytes in, :class:`AmiMessage` out; actions queued as bytes."""

    def __init__(
        self,
        *,
        action_prefix: str = "ctibridge",
        max_line: int | None = None,
        max_headers: int | None = None,
        max_body: int | None = None,
    ) -> None:
        self._max_line = max_line or streams.MAX_LINE_BYTES
        self._max_headers = max_headers or streams.MAX_HEADERS
        self._max_body = max_body or streams.MAX_BODY_BYTES
        self._prefix = action_prefix
        self._counter = itertools.count(1)
        self.banner: str | None = None
        """``Asterisk Call Manager/11.0.0`` once received."""
        super().__init__()

    @property
    def version(self) -> str | None:
        """The AMI version from the banner (``11.0.0``)."""
        return self.banner.partition("/")[2] if self.banner else None

    # -- sending ----------------------------------------------------------------------

    def send_action(self, name: str, headers: Headers = (), action_id: str | None = None) -> str:
        """Queue one action; returns its ActionID (ours unless given)."""
        action_id = action_id or f"{self._prefix}-{next(self._counter)}"
        extra = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
        message = AmiMessage.build((("Action", name), ("ActionID", action_id), *extra))
        self._out.append(message.serialize())
        return action_id

    def login(self, username: str, secret: str, *, events: str = "on") -> str:
        """Plain-text login."""
        headers = {"Username": username, "Secret": secret, "Events": events}
        return self.send_action("Login", headers)

    def challenge(self) -> str:
        """Ask for an MD5 challenge; the reply carries ``Challenge``."""
        return self.send_action("Challenge", {"AuthType": "MD5"})

    def login_md5(self, username: str, secret: str, challenge: str, *, events: str = "on") -> str:
        """Login answering a challenge with ``Key = md5(challenge + secret)``."""
        key = md5_key(challenge, secret)
        headers = {"AuthType": "MD5", "Username": username, "Key": key, "Events": events}
        return self.send_action("Login", headers)

    def ping(self) -> str:
        return self.send_action("Ping")

    def logoff(self) -> str:
        return self.send_action("Logoff")

    # -- parsing ----------------------------------------------------------------------

    def _parse(self) -> Generator[None, None, None]:
        reader = self._reader
        banner = chomp((yield from reader.read_line(self._max_line)))
        text = banner.decode(_ENCODING, errors="replace")
        if not _BANNER.fullmatch(text):
            raise FrameError(f"not an AMI banner: {text[:60]!r}")
        self.banner = text
        while not (yield from reader.at_eof()):
            first = chomp((yield from reader.read_line(self._max_line)))
            if not first:
                continue
            if first == _FOLLOWS:
                message = yield from self._read_follows(first)
            else:
                rest = yield from reader.read_until_blank(self._max_line, self._max_headers - 1)
                message = AmiMessage.parse([first, *rest])
            self._events.append(message)

    def _read_follows(self, first: bytes) -> Generator[None, None, AmiMessage]:
        """Legacy ``Response: Follows``: headers, raw output, ``--END COMMAND--``, blank."""
        reader, lines = self._reader, [first]
        while True:
            raw = yield from reader.read_line(self._max_line)
            line = chomp(raw)
            key = line.partition(b":")[0].decode(_ENCODING, errors="replace").lower()
            if not line:
                return AmiMessage.parse(lines)
            if key not in _FOLLOWS_HEADERS or len(lines) >= self._max_headers:
                break
            lines.append(line)
        output = yield from self._read_output(raw)
        if (yield from reader.read_until_blank(self._max_line, 1)):
            raise FrameError("AMI Follows reply does not end after --END COMMAND--")
        return AmiMessage.parse(lines, output)

    def _read_output(self, raw: bytes) -> Generator[None, None, str]:
        chunks: list[bytes] = []
        size = 0
        while not chomp(raw).endswith(_END_COMMAND.encode()):
            chunks.append(raw)
            size += len(raw)
            if size > self._max_body:
                raise FrameError(f"AMI command output over {self._max_body} bytes")
            raw = yield from self._reader.read_line(self._max_line)
        chunks.append(chomp(raw)[: -len(_END_COMMAND)])
        return b"".join(chunks).decode(_ENCODING, errors="replace")
