"""Whether each recording a call card links to can be played yet: ``pending`` (not fetched
yet), ``stored`` or ``failed`` (given up). Browsers offer to play only what is stored.

Pushed cards are decorated synchronously, so they take the state from memory: what this
process queued and fetched lately, ``pending`` for a recording it does not know (a call that
just ended: its rows are being added). Cards the REST API returns take it from the
database, in one query per page.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final

from ctibridge.errors import CtiError
from ctibridge.recordings.base import RecordingState, recording_id_for
from ctibridge.recordings.index import RecordingIndex

__all__ = ["RecordingStates"]

logger = logging.getLogger(__name__)

_REMEMBERED: Final = 10_000
"""Recording states kept in memory (the newest)."""
_ROWLESS_AFTER: Final = 300.0
"""Seconds after a call's end from which a recording without a row counts as failed (it was
never queued: recordings were off, or its row is gone) rather than about to be queued."""


class RecordingStates:
    def __init__(self, index: RecordingIndex, *, clock: Callable[[], float] = time.time) -> None:
        self._index = index
        self._clock = clock
        self._known: OrderedDict[str, RecordingState] = OrderedDict()

    def remember(self, recording_id: str, state: RecordingState) -> None:
        self._known[recording_id] = state
        self._known.move_to_end(recording_id)
        while len(self._known) > _REMEMBERED:
            self._known.popitem(last=False)

    def queued(self, recording_id: str) -> None:
        """A row was added: ``pending``, unless the recording is known (a call merged into
        another reports it again, and its row keeps its state)."""
        if recording_id not in self._known:
            self.remember(recording_id, RecordingState.PENDING)

    def label(self, tenant_id: str, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the ``state`` we know to each ``{"ref", "url"}`` link (``pending`` when we
        know none)."""
        for link in links:
            known = self._known.get(recording_id_for(tenant_id, link["ref"]))
            link["state"] = (known or RecordingState.PENDING).value
        return links

    async def add_to(self, cards: Sequence[dict[str, Any]]) -> None:
        """Set the ``state`` of the labelled links of these cards from the database. A
        recording without a row is ``pending`` until ``_ROWLESS_AFTER`` seconds after its
        call ended, then ``failed``. When the database cannot be read, the cards keep the
        states from memory."""
        links = [
            (card, link)
            for card in cards
            for link in card.get("recordings") or ()
            if isinstance(link, dict) and "state" in link
        ]
        ids = [recording_id_for(card["tenant_id"], link["ref"]) for card, link in links]
        try:
            stored = await self._index.states(ids)
        except CtiError as exc:
            logger.warning("recordings: states for call cards not read: %s", exc.message)
            return
        now = self._clock()
        for (card, link), recording_id in zip(links, ids, strict=True):
            state = stored.get(recording_id) or self._known.get(recording_id)
            if state is None:
                ended = card.get("ended_at")
                late = isinstance(ended, int | float) and now - ended > _ROWLESS_AFTER
                state = RecordingState.FAILED if late else RecordingState.PENDING
            link["state"] = state.value
