"""A recorded call's recording plays in place from the softphone history, in a real browser.

The demo phone system gets the recording the way the demo traffic does it
(:func:`ctibridge.demo.recordings.with_recordings`): stored on the demo Kazoo just before
the DESTROY that names it, then fetched by ctibridge and served at ``/api/recordings/<id>``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, Response, expect

from ctibridge.demo.recordings import CONTENT_TYPE, call_sound, recording_id, with_recordings
from ctibridge.demo.scenarios.script import greg_from_unix
from ctibridge.launcher import DemoSystem
from ctibridge.recordings.base import RecordingRow, RecordingState, recording_id_for
from ctibridge.services.recordings import RecordingsService
from tests.browser.conftest import Pages, scripted_call

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CALLER = "+447700900123"
PLAYER_STATE = """(audio) => ({
  error: audio.error ? audio.error.code : null,
  ready: audio.readyState,
  time: audio.currentTime,
  paused: audio.paused,
})"""


async def until(check: Callable[[], Awaitable[Any]], *, within: float, what: str) -> Any:
    """Poll the coroutine ``check()`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


async def play_recorded_call(demo: DemoSystem, *, seed: int = 2, stored: bool = True) -> list[str]:
    """Publish a whole ``recorded_inbound`` call for agent 101 through the demo's recording
    wrapper, stamped as if it had just happened; returns its recording names. Not
    ``stored``: the demo Kazoo does not have the recordings (yet)."""
    call = scripted_call(
        demo, "recorded_inbound", seed=seed, agent="101", caller=CALLER, talk_seconds=4
    )
    publish = with_recordings(demo.kazoo) if stored else demo.kazoo.publish
    start = time.time() - call.steps[-1][0]
    names: list[str] = []
    for at, step in call.steps:
        data = {**step.data, "timestamp": greg_from_unix(start + at)}
        names += data.get("media_recordings", [])
        await publish(demo.account.account_id, data)
    return names


async def stored(demo: DemoSystem, url: str) -> bool:
    """Whether the recording at ``url`` is fetched from the phone system and served."""
    headers = {"authorization": f"Bearer {demo.tokens['101']}"}
    async with httpx.AsyncClient(base_url=demo.http.url, headers=headers) as http:
        return (await http.head(url)).status_code == 200


async def player(audio: Locator) -> dict[str, Any]:
    state: dict[str, Any] = await audio.evaluate(PLAYER_STATE)
    return state


async def plays_past(audio: Locator, seconds: float) -> dict[str, Any] | None:
    state = await player(audio)
    assert state["error"] is None, f"the browser could not play the recording: {state}"
    return state if state["time"] > seconds else None


async def connected(page: Page) -> None:
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-status", "connected")


async def test_a_recording_plays_in_place_from_the_history(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    # Two calls today, before the agent opens the page: one plain, one recorded.
    plain = scripted_call(demo, "inbound_answered", agent="101", caller=CALLER, ring_seconds=2)
    await plain.play_rest()
    names = await play_recorded_call(demo)
    assert len(names) == 2  # both legs recorded
    recorded_id = await until(
        lambda: _recorded_call(demo), within=10, what="the recorded call to be stored"
    )
    card = await _card(demo, recorded_id)
    url = card["recordings"][0]["url"]
    await until(lambda: stored(demo, url), within=10, what="the recording to be fetched")

    page = await pages.open(demo.softphone_url("101"))
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if "/api/recordings/" in r.url else None)
    await connected(page)
    rows = page.get_by_test_id("history-row")
    await expect(rows).to_have_count(2)
    row = page.locator(f'[data-testid="history-row"][data-call-id="{recorded_id}"]')
    button = row.get_by_test_id("history-recording")
    await expect(button).to_be_visible()
    await expect(button).to_have_text("Recording")
    # Only the recorded call has a control, and nothing loads before a click.
    await expect(page.get_by_test_id("history-recording")).to_have_count(1)
    await expect(page.get_by_test_id("history-audio")).to_have_count(0)
    assert answers == []
    await page.screenshot(path=artifacts / "softphone-recording-control.png")

    await button.click()
    audio = row.get_by_test_id("history-audio")
    await expect(audio).to_have_attribute("src", re.compile(rf"^{re.escape(url)}\?token=[\w.-]+$"))
    await expect(button).to_be_hidden()
    first = await until(lambda: plays_past(audio, 0.2), within=10, what="playback past 0.2 s")
    assert first["ready"] >= 2 and not first["paused"]

    # Another call ends: the history is redrawn, and the recording keeps playing.
    await row.evaluate("(el) => { el.dataset.before = 'yes'; }")
    other = scripted_call(
        demo, "inbound_missed", seed=3, agent="101", caller=CALLER, ring_seconds=1
    )
    await other.play_rest()
    await expect(row).not_to_have_attribute("data-before", "yes", timeout=10_000)
    later = await until(
        lambda: plays_past(audio, first["time"] + 0.2), within=10, what="playback to go on"
    )
    assert later["ready"] >= 2 and not later["paused"]
    await expect(page.get_by_test_id("history-audio")).to_have_count(1)
    await expect(button).to_be_hidden()

    assert answers, "the browser never asked for the recording"
    assert {r.status for r in answers} <= {200, 206}, [(r.url, r.status) for r in answers]
    assert all(r.url.split("?")[0].endswith(url) for r in answers)
    await page.screenshot(path=artifacts / "softphone-recording.png")


async def _recorded_call(demo: DemoSystem) -> str | None:
    """The id of the ended call of today that has recordings (None until it is stored)."""
    headers = {"authorization": f"Bearer {demo.tokens['101']}"}
    async with httpx.AsyncClient(base_url=demo.http.url, headers=headers) as http:
        reply = await http.get("/api/calls", params={"active": "false"})
    items = reply.json().get("items", []) if reply.status_code == 200 else []
    found = [item["call_id"] for item in items if item.get("recordings")]
    return found[0] if found else None


async def _card(demo: DemoSystem, call_id: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {demo.tokens['101']}"}
    async with httpx.AsyncClient(base_url=demo.http.url, headers=headers) as http:
        reply = await http.get(f"/api/calls/{call_id}")
    assert reply.status_code == 200, reply.text
    card: dict[str, Any] = reply.json()
    return card


def _service(demo: DemoSystem) -> RecordingsService:
    service = demo.services.recordings
    assert service is not None
    return service


async def recording_rows(demo: DemoSystem, names: list[str]) -> list[RecordingRow] | None:
    """The rows of these recordings once each has been tried at least once."""
    account = demo.account.account_id
    rows = [await _service(demo).index.get(recording_id_for(account, n)) for n in names]
    if any(row is None or row.attempts == 0 for row in rows):
        return None
    return [row for row in rows if row is not None]


async def test_a_recording_not_fetched_yet_is_processing_then_plays(
    demo: DemoSystem, pages: Pages, artifacts: Path
) -> None:
    page = await pages.open(demo.softphone_url("101"))
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if "/api/recordings/" in r.url else None)
    await connected(page)

    # Two recorded calls end before Kazoo has stored their recordings: the fetch of both
    # fails (and is retried); ctibridge gives up on the second one's.
    waiting = await play_recorded_call(demo, seed=4, stored=False)
    lost = await play_recorded_call(demo, seed=5, stored=False)
    service = _service(demo)
    for row in await until(lambda: recording_rows(demo, lost), within=15, what="a first attempt"):
        failed = dataclasses.replace(row, state=RecordingState.FAILED, last_error="gave up")
        await service.index.save(failed)
        service.states.remember(row.recording_id, RecordingState.FAILED)
    [first, *_] = await until(
        lambda: recording_rows(demo, waiting), within=15, what="a first attempt"
    )
    [gone, *_] = await until(lambda: recording_rows(demo, lost), within=15, what="the failed rows")

    row = page.locator(f'[data-testid="history-row"][data-call-id="{first.call_id}"]')
    note = row.get_by_test_id("history-recording")
    await expect(note).to_have_attribute("data-state", "pending", timeout=10_000)
    await expect(note).to_have_text("Recording — processing…")
    assert await note.evaluate("(el) => el.tagName") == "SPAN"  # not a button: nothing to click
    await note.click()
    await expect(row.get_by_test_id("history-audio")).to_have_count(0)
    other = page.locator(f'[data-testid="history-row"][data-call-id="{gone.call_id}"]')
    unavailable = other.get_by_test_id("history-recording")
    await expect(unavailable).to_have_attribute("data-state", "failed", timeout=10_000)
    await expect(unavailable).to_have_text("Recording unavailable")
    await page.screenshot(path=artifacts / "softphone-recording-processing.png")
    assert answers == []  # no link to a recording that is not there

    # Kazoo has them now; the worker's next try stores them; the softphone looks again.
    account = demo.account.account_id
    sound = call_sound()
    for name in waiting:
        leg = name.removeprefix("call_recording_").removesuffix(".mp3")
        demo.kazoo.add_recording(
            account, recording_id(name), sound, name=name, call_id=leg, content_type=CONTENT_TYPE
        )
    await service.index.make_due(time.time())
    service.kick()
    button = row.get_by_test_id("history-recording")
    await expect(button).to_have_attribute("data-state", "stored", timeout=20_000)
    await expect(button).to_have_text("Recording")
    await expect(unavailable).to_have_text("Recording unavailable")
    await button.click()
    audio = row.get_by_test_id("history-audio")
    playing = await until(lambda: plays_past(audio, 0.2), within=10, what="playback past 0.2 s")
    assert playing["ready"] >= 2 and not playing["paused"]
    assert answers and {r.status for r in answers} <= {200, 206}
    await page.screenshot(path=artifacts / "softphone-recording-ready.png")
