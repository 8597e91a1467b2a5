"""A byte buffer read by generators: the sans-I/O framing helper for AMI and ESL.

A parser is a generator that ``yield from``-s the readers below; each reader yields (asks for
more bytes) until it can return what it was asked for. The protocol object feeds bytes in with
:meth:`StreamReader.feed_data` and resumes the parser, the way ``websockets`` and ``h11`` parse.

Security limits
---------------
Every read is bounded, so a peer cannot make us buffer without end. The limits are module
constants; each can be raised or lowered by an environment variable read once, at import
(the one place outside ``config.py`` that reads the environment, as STYLE §8 allows):

=========================  ==================================  ============
constant                   environment variable                default
=========================  ==================================  ============
``MAX_LINE_BYTES``         ``CTIBRIDGE_MAX_LINE_BYTES``        8 KiB
``MAX_HEADERS``            ``CTIBRIDGE_MAX_HEADERS``           1024
``MAX_BODY_BYTES``         ``CTIBRIDGE_MAX_BODY_BYTES``        8 MiB
=========================  ==================================  ============

A line, header block or body over its limit is a :class:`~ctibridge.errors.FrameError`:
the stream cannot be trusted any more and the connection must be dropped.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping
from typing import Generic, TypeVar

from ctibridge.errors import ConfigError, FrameError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADERS",
    "MAX_LINE_BYTES",
    "GeneratorProtocol",
    "StreamReader",
    "chomp",
    "limit_from_env",
]

M = TypeVar("M")


def limit_from_env(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    """The security limit ``CTIBRIDGE_<name>`` from the environment, else ``default``."""
    env = os.environ if environ is None else environ
    raw = env.get(f"CTIBRIDGE_{name}")
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) < 1:
        raise ConfigError(f"CTIBRIDGE_{name} must be a positive integer, not {raw!r}")
    return int(text)


MAX_LINE_BYTES = limit_from_env("MAX_LINE_BYTES", 8 * 1024)
"""Longest line (terminator included) of an AMI message or an ESL header block."""
MAX_HEADERS = limit_from_env("MAX_HEADERS", 1024)
"""Most header lines in one AMI message or one ESL header block."""
MAX_BODY_BYTES = limit_from_env("MAX_BODY_BYTES", 8 * 1024 * 1024)
"""Largest ESL ``Content-Length`` body, or AMI ``Response: Follows`` output."""


def chomp(line: bytes) -> bytes:
    """``line`` without its ``\\n`` or ``\\r\\n`` terminator."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


class StreamReader:
    """Bytes in, lines and blocks out. Only generators read; only the protocol feeds."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False

    def feed_data(self, data: bytes) -> None:
        if self.eof:
            raise FrameError("data received after the end of the stream")
        self.buffer += data

    def feed_eof(self) -> None:
        self.eof = True

    def at_eof(self) -> Generator[None, None, bool]:
        """True once the stream ended with nothing left to read; False when bytes wait."""
        while not self.buffer:
            if self.eof:
                return True
            yield
        return False

    def read_line(self, max_len: int) -> Generator[None, None, bytes]:
        """One line, terminator (``\\n``) included; over ``max_len`` bytes is a FrameError."""
        start = 0
        while (end := self.buffer.find(b"\n", start)) == -1:
            if len(self.buffer) >= max_len:
                raise FrameError(f"line longer than {max_len} bytes")
            if self.eof:
                raise EOFError(f"stream ends after {len(self.buffer)} bytes, in a line")
            start = len(self.buffer)
            yield
        if end + 1 > max_len:
            raise FrameError(f"line longer than {max_len} bytes")
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    def read_exact(self, n: int) -> Generator[None, None, bytes]:
        """Exactly ``n`` bytes (the caller has checked ``n`` against its limit)."""
        while len(self.buffer) < n:
            if self.eof:
                raise EOFError(f"stream ends after {len(self.buffer)} of {n} bytes")
            yield
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read_until_blank(self, max_line: int, max_lines: int) -> Generator[None, None, list[bytes]]:
        """Lines (terminators stripped) up to a blank line; ``[]`` if the first is blank."""
        lines: list[bytes] = []
        while line := chomp((yield from self.read_line(max_line))):
            if len(lines) >= max_lines:
                raise FrameError(f"more than {max_lines} header lines")
            lines.append(line)
        return lines


class GeneratorProtocol(Generic[M]):
    """The sans-I/O shell shared by the AMI and ESL protocols (the ``websockets`` API).

    Subclasses write :meth:`_parse`, a generator that reads ``self._reader`` and appends
    messages to ``self._events``. A broken frame raises :class:`FrameError` from
    :meth:`receive_data` / :meth:`receive_eof`, and again on every later call: the
    connection must be dropped.
    """

    def __init__(self) -> None:
        self._reader = StreamReader()
        self._events: list[M] = []
        self._out: list[bytes] = []
        self._failed: FrameError | None = None
        self._parser = self._parse()
        next(self._parser)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket; parse every complete message they finish."""
        self._check()
        self._reader.feed_data(data)
        self._step()

    def receive_eof(self) -> None:
        """The peer closed. A message cut in the middle is a FrameError."""
        self._check()
        self._reader.feed_eof()
        self._step()

    def events_received(self) -> list[M]:
        """Messages parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """Bytes queued by the send methods since the last call, in order."""
        out, self._out = self._out, []
        return out

    @property
    def failed(self) -> FrameError | None:
        """The framing error that broke this connection, if any."""
        return self._failed

    def _parse(self) -> Generator[None, None, None]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _check(self) -> None:
        if self._failed is not None:
            raise self._failed

    def _step(self) -> None:
        try:
            next(self._parser)
        except StopIteration:
            pass
        except EOFError as exc:
            self._failed = FrameError(f"connection closed in the middle of a message: {exc}")
            raise self._failed from exc
        except FrameError as exc:
            self._failed = exc
            raise
