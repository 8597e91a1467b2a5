"""FreeSWITCH Event Socket (inbound ESL client), sans I/O.

Every frame from the switch is a block of ``Key: Value`` lines (LF; CRLF tolerated) ended by
a blank line, then ``Content-Length`` bytes of body if that header is there. The
``Content-Type`` says what it is: ``auth/request``, ``command/reply``, ``api/response``,
``text/event-plain`` / ``text/event-json`` (an event in the body), ``text/disconnect-notice``,
``text/rude-rejection``, ``log/data``.

Framing faults (a header line without ``:``, a non-numeric or oversized ``Content-Length``,
a line over the limit, a cut frame) raise :class:`FrameError`. The *body* of an event frame
is decoded on demand by :meth:`EslMessage.event`; a body that does not decode is a
:class:`FieldError` (skip that event, keep the connection).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ctibridge.errors import FieldError, FrameError
from ctibridge.protocols import streams
from ctibridge.protocols.streams import GeneratorProtocol

__all__ = ["EVENT_TYPES", "EslEvent", "EslMessage", "EslProtocol", "url_encode"]

EVENT_TYPES = frozenset({"text/event-plain", "text/event-json"})
_ENCODING = "utf-8"
_DIGITS = re.compile(rb"[0-9]{1,12}")
_NAME = b"Event-Name: "
# Bytes FreeSWITCH percent-encodes in event-plain values (besides controls and non-ASCII).
_UNSAFE = frozenset(b' "#%&+:;<=>?@[\\]^`{|}')


def url_encode(value: str) -> str:
    """Percent-encode a header value the way FreeSWITCH does in ``text/event-plain``."""
    return "".join(
        f"%{b:02X}" if b < 0x21 or b > 0x7E or b in _UNSAFE else chr(b)
        for b in value.encode(_ENCODING)
    )


def _pairs_index(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    index: dict[str, str] = {}
    for key, value in headers:
        index.setdefault(key.lower(), value)
    return index


@dataclass(frozen=True, slots=True)
class EslMessage:
    """One frame from the switch: headers, then the body they announce."""

    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    _index: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _pairs_index(self.headers))

    @property
    def content_type(self) -> str:
        return self._index.get("content-type", "")

    @property
    def is_event(self) -> bool:
        return self.content_type in EVENT_TYPES

    @property
    def reply_text(self) -> str | None:
        return self._index.get("reply-text")

    @property
    def ok(self) -> bool:
        """A ``command/reply`` or ``api/response`` that starts ``+OK``."""
        text = self.reply_text if self.reply_text is not None else self.text
        return text.startswith("+OK")

    @property
    def job_uuid(self) -> str | None:
        return self._index.get("job-uuid")

    @property
    def text(self) -> str:
        """The body as text (api output, disconnect notice)."""
        return self.body.decode(_ENCODING, errors="replace")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._index.get(key.lower(), default)

    @property
    def event_name(self) -> str | None:
        """``Event-Name`` of a plain event, read without decoding the rest (cheap skipping).
        FreeSWITCH writes it first (after ``Event-Subclass`` for CUSTOM); None when it is not
        near the top, or for JSON."""
        if self.content_type != "text/event-plain":
            return None
        head = b"\n" + self.body[:512]
        at = head.find(b"\n" + _NAME)
        if at < 0:
            return None
        start = at + 1 + len(_NAME)
        end = head.find(b"\n", start)
        line = head[start : end if end >= 0 else len(head)]
        return unquote(line.decode(_ENCODING, errors="replace")) if line else None

    def event(self) -> EslEvent:
        """The event this frame carries. Not an event, or a bad body: FieldError."""
        if self.content_type == "text/event-plain":
            return EslEvent.parse_plain(self.body)
        if self.content_type == "text/event-json":
            return EslEvent.parse_json(self.body)
        raise FieldError(f"ESL frame {self.content_type!r} carries no event")

    @classmethod
    def parse(cls, lines: Iterable[bytes], body: bytes = b"") -> EslMessage:
        return cls(tuple(_split(line) for line in lines), body)

    def serialize(self) -> bytes:
        headers = list(self.headers)
        lengths = [i for i, (k, _v) in enumerate(headers) if k.lower() == "content-length"]
        for i in lengths:
            headers[i] = (headers[i][0], str(len(self.body)))
        if self.body and not lengths:
            headers.insert(0, ("Content-Length", str(len(self.body))))
        head = "".join(f"{k}: {v}\n" for k, v in headers) + "\n"
        return head.encode(_ENCODING) + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


def _split(line: bytes) -> tuple[str, str]:
    text = line.decode(_ENCODING, errors="replace")
    key, sep, value = text.partition(":")
    if not sep or not key.strip():
        raise FrameError(f"ESL header line without a key: {text[:60]!r}")
    return key, value[1:] if value.startswith(" ") else value


@dataclass(frozen=True, slots=True)
class EslEvent:
    """A decoded event: header values URL-decoded, plus an optional nested body."""

    headers: tuple[tuple[str, str], ...]
    body: str = ""
    """Nested body (``BACKGROUND_JOB`` output, ``log`` text); empty if none."""
    _index: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _pairs_index(self.headers))

    @property
    def name(self) -> str:
        """``Event-Name`` (``CHANNEL_CREATE``...)."""
        return self._index.get("event-name", "")

    @property
    def subclass(self) -> str | None:
        """``Event-Subclass`` of a CUSTOM event (``sofia::register``...)."""
        return self._index.get("event-subclass")

    @property
    def channel_id(self) -> str | None:
        """The leg (``Unique-ID``)."""
        return self._index.get("unique-id")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._index.get(key.lower(), default)

    def get_all(self, key: str) -> list[str]:
        wanted = key.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    @classmethod
    def parse_plain(cls, data: bytes) -> EslEvent:
        """A ``text/event-plain`` body: URL-encoded ``Key: value`` lines, blank, body."""
        head, _sep, rest = data.partition(b"\n\n")
        headers = tuple(_plain_pairs(head.decode(_ENCODING, errors="replace")))
        body = rest
        length = _pairs_index(headers).get("content-length")
        if length is not None:
            size = length.strip()
            if not _DIGITS.fullmatch(size.encode()) or int(size) > len(rest):
                raise FieldError(f"ESL event body shorter than its Content-Length {length!r}")
            body = rest[: int(size)]
        return cls(headers, body.decode(_ENCODING, errors="replace"))

    @classmethod
    def parse_json(cls, data: bytes) -> EslEvent:
        """A ``text/event-json`` body; list values become repeated headers."""
        try:
            obj = json.loads(data.decode(_ENCODING, errors="replace"))
        except (ValueError, RecursionError) as exc:
            raise FieldError(f"ESL event is not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise FieldError("ESL JSON event is not an object")
        body = obj.pop("_body", "")
        headers: list[tuple[str, str]] = []
        for key, value in obj.items():
            values = value if isinstance(value, list) else [value]
            headers.extend((str(key), _json_text(v)) for v in values)
        return cls(tuple(headers), _json_text(body))

    def serialize_plain(self) -> bytes:
        body = self.body.encode(_ENCODING)
        length = str(len(body))
        headers = [(k, length if k.lower() == "content-length" else v) for k, v in self.headers]
        if body and "content-length" not in self._index:
            headers.append(("Content-Length", length))
        head = "".join(f"{k}: {url_encode(v)}\n" for k, v in headers)
        return (head + "\n").encode(_ENCODING) + body

    def serialize_json(self) -> bytes:
        obj: dict[str, Any] = {}
        for key, value in self.headers:
            old = obj.get(key)
            if old is None:
                obj[key] = value
            elif isinstance(old, list):
                old.append(value)
            else:
                obj[key] = [old, value]
        if self.body:
            obj["_body"] = self.body
        return json.dumps(obj).encode(_ENCODING)

    def __bytes__(self) -> bytes:
        return self.serialize_plain()


def _plain_pairs(head: str) -> Iterator[tuple[str, str]]:
    for line in head.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise FieldError(f"ESL event line without a key: {line[:60]!r}")
        value = value[1:] if value.startswith(" ") else value
        yield key, unquote(value, errors="replace") if "%" in value else value


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


class EslProtocol(GeneratorProtocol[EslMessage]):
    """One inbound ESL connection: bytes in, :class:`EslMessage` out; commands queued."""

    def __init__(
        self,
        *,
        max_line: int | None = None,
        max_headers: int | None = None,
        max_body: int | None = None,
    ) -> None:
        self._max_line = max_line or streams.MAX_LINE_BYTES
        self._max_headers = max_headers or streams.MAX_HEADERS
        self._max_body = max_body or streams.MAX_BODY_BYTES
        super().__init__()

    # -- sending ----------------------------------------------------------------------

    def send_command(self, line: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Queue one command line (and optional header lines), ended by a blank line."""
        parts = [line, *(f"{k}: {v}" for k, v in headers)]
        for part in parts:
            if not part.strip() or "\n" in part or "\r" in part:
                raise FieldError(f"ESL command part {part[:60]!r} cannot be sent safely")
        self._out.append(("\n".join(parts) + "\n\n").encode(_ENCODING))

    def auth(self, password: str) -> None:
        self.send_command(f"auth {password}")

    def subscribe(self, names: Iterable[str] = ("ALL",), *, fmt: str = "plain") -> None:
        """``event plain|json <names>``: ask for events (``ALL``, or names and ``CUSTOM x``)."""
        if fmt not in ("plain", "json"):
            raise FieldError(f"unsupported ESL event format {fmt!r}")
        self.send_command(f"event {fmt} {' '.join(names)}")

    def filter(self, header: str, value: str) -> None:
        """Only deliver events whose ``header`` equals ``value`` (filters add up)."""
        self.send_command(f"filter {header} {value}")

    def filter_delete(self, header: str, value: str | None = None) -> None:
        self.send_command(f"filter delete {header}" + (f" {value}" if value else ""))

    def api(self, command: str, args: str = "") -> None:
        """Blocking API command; the switch answers with an ``api/response`` frame."""
        self.send_command(f"api {command} {args}".rstrip())

    def bgapi(self, command: str, args: str = "", job_uuid: str | None = None) -> str:
        """Background API command; its result comes as a ``BACKGROUND_JOB`` with this uuid."""
        job_uuid = job_uuid or str(uuid.uuid4())
        self.send_command(f"bgapi {command} {args}".rstrip(), [("Job-UUID", job_uuid)])
        return job_uuid

    def exit(self) -> None:
        self.send_command("exit")

    # -- parsing ----------------------------------------------------------------------

    def _parse(self) -> Generator[None, None, None]:
        reader = self._reader
        while not (yield from reader.at_eof()):
            lines = yield from reader.read_until_blank(self._max_line, self._max_headers)
            if not lines:
                continue
            frame = EslMessage.parse(lines)
            length = frame.get("Content-Length")
            if length is None:
                self._events.append(frame)
                continue
            body = yield from reader.read_exact(self._body_length(length))
            self._events.append(EslMessage(frame.headers, body))

    def _body_length(self, raw: str) -> int:
        text = raw.strip()
        if not _DIGITS.fullmatch(text.encode()):
            raise FrameError(f"ESL Content-Length is not a number: {raw[:30]!r}")
        if int(text) > self._max_body:
            raise FrameError(f"ESL body of {text} bytes is over {self._max_body}")
        return int(text)
