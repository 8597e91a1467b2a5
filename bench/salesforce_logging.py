"""Salesforce call logging: API requests per logged call, and drain rate, for a burst of calls.

A burst of N finished calls (default 1,000) is pending in the outbox; the worker drains it
into the fake Salesforce of the tests (real HTTP on 127.0.0.1, two hosts: login and
instance). Each log is a Task plus a ``KazooCallData__c`` record.

* batched: ``SalesforceAdapter.log_calls`` with everything pending: one composite request
  per 25 logs (two sObject-collection upserts inside).
* baseline, same run, same data: one request per log (``log_call`` for each log in turn).

Only requests to the org's instance count (the daily API allocation); the one token
request of each run is left out. The fake answers in well under a millisecond, so the drain
rates measure ctibridge's own cost plus local HTTP, not Salesforce's latency (which makes
batching matter even more: real round trips take 100 ms or more).

Run: ``.venv/bin/python -m bench.salesforce_logging`` (``--calls 200`` for a quick run).
One figure a line, ``name: value unit``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.fake_salesforce import FakeSalesforce

from ctibridge.config import CallsSettings
from ctibridge.crm.base import CallLog
from ctibridge.crm.salesforce import SalesforceAdapter, SalesforceOrg, StaticOrgs
from ctibridge.errors import CrmError

TENANT = "bench"
T0 = 1_773_360_000.0


def burst(n: int) -> list[CallLog]:
    return [
        CallLog(
            key=f"bench-{i}:agent-{i % 40}",
            tenant_id=TENANT,
            call_id=f"bench-{i}",
            agent_id=f"agent-{i % 40}",
            crm_user_id=None,
            call_type=("Inbound", "Outbound", "Internal")[i % 3],
            subject=f"Call {i}",
            started_at=T0 + i,
            ended_at=T0 + i + 60 + i % 300,
            duration_seconds=60 + i % 300,
            disposition="Answered" if i % 4 else "Missed",
            remote_number=f"+4416329{i % 100000:05d}",
            recording_url=f"https://cti.example.com/recordings/bench-{i}.mp3",
        )
        for i in range(n)
    ]


Drain = Callable[[SalesforceAdapter, Sequence[CallLog]], Awaitable[list[str | CrmError]]]


async def batched(crm: SalesforceAdapter, logs: Sequence[CallLog]) -> list[str | CrmError]:
    return await crm.log_calls(logs)


async def one_by_one(crm: SalesforceAdapter, logs: Sequence[CallLog]) -> list[str | CrmError]:
    results: list[str | CrmError] = []
    for log in logs:
        try:
            results.append(await crm.log_call(log))
        except CrmError as exc:
            results.append(exc)
    return results


async def run(fake: FakeSalesforce, drain: Drain, logs: list[CallLog]) -> tuple[int, float]:
    """API requests and seconds to drain ``logs`` into a fresh org."""
    fake.reset()
    org = SalesforceOrg(
        client_id=fake.CLIENT_ID, login_url=fake.login_url, refresh_token=fake.grant_refresh_token()
    )
    crm = SalesforceAdapter(orgs=StaticOrgs({TENANT: org}), calls=CallsSettings())
    try:
        await crm.lookup_by_number(TENANT, "+441632960000")  # sign in outside the timing
        before = len(fake.api_requests())
        start = time.perf_counter()
        results = await drain(crm, logs)
        elapsed = time.perf_counter() - start
    finally:
        await crm.close()
    failed = [r for r in results if isinstance(r, CrmError)]
    if failed or len(fake.records("Task")) != len(logs):
        raise SystemExit(f"bench: {len(failed)} logs failed: {failed[:1]}")
    return len(fake.api_requests()) - before, elapsed


async def main(calls: int) -> None:
    logs = burst(calls)
    async with FakeSalesforce() as fake:
        requests, seconds = await run(fake, batched, logs)
        base_requests, base_seconds = await run(fake, one_by_one, logs)
    print(f"salesforce_logged_calls: {calls} calls")
    print(f"salesforce_requests_per_logged_call: {requests / calls:.3f} requests")
    print(f"salesforce_requests_per_logged_call_baseline: {base_requests / calls:.3f} requests")
    print(f"salesforce_drain_rate: {calls / seconds:.0f} logs/s")
    print(f"salesforce_drain_rate_baseline: {calls / base_seconds:.0f} logs/s")
    print(f"salesforce_drain_speedup: {base_seconds / seconds:.1f} x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    asyncio.run(main(parser.parse_args().calls))
