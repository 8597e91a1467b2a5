"""A CRM held in memory, scriptable: for tests of services and for trying ctibridge without
any CRM. Failures can be queued to exercise retries (``fail_next``)."""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from ctibridge.crm.base import CallLog, CrmRecord, CrmRef
from ctibridge.errors import CrmError, InvalidRequest

__all__ = ["MemoryCrm"]


class MemoryCrm:
    name = "memory"

    def __init__(self) -> None:
        self.records: dict[tuple[str, CrmRef], CrmRecord] = {}
        self.logs: dict[str, tuple[str, CallLog]] = {}
        """Call logs by idempotency key: (crm id, log)."""
        self.requests: list[str] = []
        self._failures: deque[CrmError] = deque()
        self._ids = itertools.count(1)

    def fail_next(self, *errors: CrmError) -> None:
        self._failures.extend(errors)

    def _call(self, what: str) -> None:
        self.requests.append(what)
        if self._failures:
            raise self._failures.popleft()

    def add(self, tenant_id: str, record: CrmRecord) -> None:
        self.records[tenant_id, record.ref] = record

    async def lookup_by_number(
        self, tenant_id: str, number: str, *, limit: int = 20
    ) -> list[CrmRecord]:
        self._call("lookup")
        found = [r for (t, _), r in self.records.items() if t == tenant_id and r.number == number]
        return found[:limit]

    async def get_record(self, tenant_id: str, ref: CrmRef) -> CrmRecord | None:
        self._call("get")
        return self.records.get((tenant_id, ref))

    async def create_record(self, tenant_id: str, object: str, fields: dict[str, Any]) -> CrmRecord:
        self._call("create")
        if not fields.get("name"):
            raise InvalidRequest("name is required", details={"field": "name"})
        record = CrmRecord(
            CrmRef(object, f"mem{next(self._ids)}"), fields["name"], number=fields.get("number")
        )
        self.add(tenant_id, record)
        return record

    async def log_call(self, log: CallLog) -> str:
        self._call("log_call")
        if log.key not in self.logs:
            self.logs[log.key] = (f"log{next(self._ids)}", log)
        return self.logs[log.key][0]

    async def search(self, tenant_id: str, text: str, *, limit: int = 20) -> list[CrmRecord]:
        self._call("search")
        needle = text.lower()
        found = [
            r for (t, _), r in self.records.items() if t == tenant_id and needle in r.name.lower()
        ]
        return found[:limit]

    async def close(self) -> None:
        return None
