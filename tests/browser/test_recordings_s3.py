"""The softphone history's recording player with the recordings kept in an S3-compatible
bucket (moto's S3 over a real socket, tests/fakes/fake_s3.py): the same walk-through as
test_recordings.py, in a real browser, against a demo system whose store is the bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ctibridge import config
from ctibridge.launcher import DemoSystem, running_demo
from tests.browser import test_recordings
from tests.browser.conftest import Pages, eventually
from tests.fakes.fake_s3 import FakeS3, fake_s3_fixture  # noqa: F401  (the fake_s3 fixture)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def s3_demo(tmp_path: Path, fake_s3: FakeS3) -> AsyncIterator[DemoSystem]:
    recordings = fake_s3.section(fake_s3.create_bucket())
    overrides = {"data_dir": str(tmp_path), "web": {"port": 0}, "recordings": recordings}
    async with running_demo(config.load(None, {}, overrides), traffic=False) as system:
        await eventually(
            lambda: system.services.status()["connectors"][0]["connected"],
            within=10,
            what="the Kazoo connector",
        )
        yield system


async def test_a_recording_in_the_bucket_plays_in_place_from_the_history(
    s3_demo: DemoSystem, fake_s3: FakeS3, pages: Pages, artifacts: Path
) -> None:
    shots = artifacts / "s3"
    shots.mkdir(exist_ok=True)
    await test_recordings.test_a_recording_plays_in_place_from_the_history(s3_demo, pages, shots)
    bucket = s3_demo.services.settings.recordings.s3_bucket
    assert len(fake_s3.objects(bucket)) == 2  # both legs' recordings, in the bucket only
    assert not (Path(s3_demo.services.settings.data_dir) / "recordings").exists()
    reads = [r for r in fake_s3.requests() if r.method == "GET"]
    assert reads and all(r.range for r in reads), "the player was served from ranged reads"
