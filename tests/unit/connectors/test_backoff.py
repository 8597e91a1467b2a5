"""Reconnect delays, the retry decision and the Reconnector's waiting."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random

import httpx
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.http11 import Response

from ctibridge.connectors.base import Reconnector, backoff, is_retryable
from ctibridge.errors import (
    ConfigError,
    FieldError,
    FrameError,
    PbxAuthError,
    PbxUnavailable,
)


def ceilings(initial: float, maximum: float, factor: float, n: int) -> list[float]:
    return [min(maximum, initial * factor**i) for i in range(n)]


def test_full_jitter_matches_a_seeded_random() -> None:
    delays = list(itertools.islice(backoff(0.5, 30.0, rng=random.Random(7)), 12))
    twin = random.Random(7)
    assert delays == pytest.approx([twin.uniform(0, c) for c in ceilings(0.5, 30.0, 1.6, 12)])


def test_delays_stay_under_a_capped_growing_ceiling() -> None:
    delays = list(itertools.islice(backoff(1.0, 10.0, 2.0, rng=random.Random(1)), 200))
    for delay, ceiling in zip(delays, ceilings(1.0, 10.0, 2.0, 200), strict=True):
        assert 0 <= delay <= ceiling
    assert max(delays[10:]) > 5  # the cap is reached, and jitter still spreads below it
    assert len(set(delays)) == len(delays)


def test_the_ceiling_grows_by_the_factor() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    delays = list(itertools.islice(backoff(0.5, 5.0, rng=Top()), 7))
    assert delays == pytest.approx([0.5, 0.8, 1.28, 2.048, 3.2768, 5.0, 5.0])


@pytest.mark.parametrize(
    ("initial", "maximum", "factor"), [(0, 1, 1.6), (-1, 1, 1.6), (2, 1, 1.6), (1, 2, 0.5)]
)
def test_backoff_rejects_bad_settings(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError):
        next(backoff(initial, maximum, factor))


def _closed() -> ConnectionClosedError:
    return ConnectionClosedError(None, None)


def _invalid_status() -> InvalidStatus:
    return InvalidStatus(Response(503, "Service Unavailable", Headers()))


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (PbxUnavailable("down"), True),
        (PbxAuthError("refused"), False),
        (FrameError("desync"), True),
        (FieldError("one bad message"), True),
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (OSError("unreachable"), True),
        (asyncio.IncompleteReadError(b"", 10), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (_closed(), True),
        (_invalid_status(), True),
        (ConfigError("bad"), False),
        (ValueError("bug"), False),
        (KeyError("bug"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_is_retryable(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry


async def test_reconnector_sleeps_jittered_delays_and_restarts_after_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ctibridge.connectors.base")
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    retry = Reconnector("pbx", initial=1.0, maximum=4.0, rng=random.Random(3), sleep=sleep)
    for _ in range(4):
        await retry.wait(PbxUnavailable("down"))
    retry.connected()
    await retry.wait(OSError("reset"))

    twin = random.Random(3)
    expected = [twin.uniform(0, c) for c in (1.0, 1.6, 2.56, 4.0)] + [twin.uniform(0, 1.0)]
    assert slept == pytest.approx(expected)
    assert retry.retries == 5
    assert retry.last_error == "OSError: reset"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5 and lines[0].startswith("pbx: PbxUnavailable: down; reconnecting in")


async def test_reconnector_reraises_fatal_errors() -> None:
    async def sleep(delay: float) -> None:
        raise AssertionError("must not wait before a fatal error")

    retry = Reconnector("pbx", initial=1.0, maximum=2.0, sleep=sleep)
    with pytest.raises(PbxAuthError):
        await retry.wait(PbxAuthError("refused"))
    assert retry.retries == 0
    assert retry.last_error == "PbxAuthError: refused"
