"""Call recordings on the demo phone system.

A real Kazoo writes a call's recording while the call is up and names it in the
``media_recordings`` of the leg's ``CHANNEL_DESTROY``; ctibridge then fetches it through
crossbar. The demo has no media, so :func:`with_recordings` stores a made-up recording
(:func:`call_sound`, built here in code: nothing is shipped) on the demo server just before
such a DESTROY is published, and ctibridge's fetch finds it.
"""

from __future__ import annotations

import hashlib
import io
import math
import wave
from collections.abc import Iterator
from typing import Any

from ctibridge.demo.kazoo.server import KazooServer
from ctibridge.demo.traffic import Publish

__all__ = ["CONTENT_TYPE", "SAMPLE_RATE", "call_sound", "recording_id", "with_recordings"]

SAMPLE_RATE = 8000
"""Telephone quality: 8 kHz, mono, 16-bit PCM."""
CONTENT_TYPE = "audio/wav"

_TONES = (400.0, 450.0)
"""The two tones, sounded together (a UK-style ring)."""
_CADENCE = ((0.4, True), (0.2, False), (0.4, True), (0.6, False))
"""(seconds, sounding) repeated: ring-ring, pause."""
_LEVEL = 0.18
"""Peak level as a fraction of full scale: soft."""
_FADE = 0.01
"""Seconds of fade in and out of each burst (no clicks)."""


def call_sound(seconds: float = 6.0) -> bytes:
    """A WAV file of ``seconds`` of a soft two-tone ring (the same bytes every time)."""
    frames = bytearray()
    for sample in _samples(round(seconds * SAMPLE_RATE)):
        frames += sample.to_bytes(2, "little", signed=True)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(frames))
    return out.getvalue()


def _samples(count: int) -> Iterator[int]:
    period = sum(length for length, _ in _CADENCE)
    peak = _LEVEL * 32767 / len(_TONES)
    for n in range(count):
        t = n / SAMPLE_RATE
        gain = _envelope(t % period)
        if gain == 0.0:
            yield 0
            continue
        value = sum(math.sin(2 * math.pi * f * t) for f in _TONES)
        yield round(peak * gain * value)


def _envelope(at: float) -> float:
    """0..1: how loud the cadence is ``at`` seconds into its period."""
    start = 0.0
    for length, sounding in _CADENCE:
        if at < start + length:
            if not sounding:
                return 0.0
            edge = min(at - start, start + length - at)
            return min(1.0, edge / _FADE)
        start += length
    return 0.0


def recording_id(name: str) -> str:
    """The demo server's document id for the recording called ``name`` (stable)."""
    return "demo-" + hashlib.sha256(name.encode()).hexdigest()[:26]


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    return []


def with_recordings(kazoo: KazooServer, audio: bytes | None = None) -> Publish:
    """``kazoo.publish``, except that each recording a ``CHANNEL_DESTROY`` names in
    ``media_recordings`` is first stored on ``kazoo`` (``audio``, by default
    :func:`call_sound`)."""
    sound = call_sound() if audio is None else audio

    async def publish(account_id: str, data: dict[str, Any]) -> None:
        if data.get("event_name") == "CHANNEL_DESTROY":
            call_id = data.get("call_id")
            for name in _names(data.get("media_recordings")):
                kazoo.add_recording(
                    account_id,
                    recording_id(name),
                    sound,
                    name=name,
                    call_id=call_id if isinstance(call_id, str) else None,
                    content_type=CONTENT_TYPE,
                )
        await kazoo.publish(account_id, data)

    return publish
