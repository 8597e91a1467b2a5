"""Asterisk bridges: who is in which bridge, and who is across a two-party one, seen through
``Local/`` pairs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ctibridge.callstate.asterisk.leg import _Leg


class _Bridges:
    """Which channel is in which bridge (one at a time), and who is across a two-party one."""

    def __init__(self) -> None:
        self._members: dict[str, list[str]] = {}
        self._of: dict[str, str] = {}

    def members_of(self, bridge: str) -> list[str]:
        return list(self._members.get(bridge, ()))

    def enter(self, leg_id: str, bridge: str) -> None:
        old = self._of.get(leg_id)
        if old is not None and old != bridge:
            self._drop(leg_id, old)
        members = self._members.setdefault(bridge, [])
        if leg_id not in members:
            members.append(leg_id)
        self._of[leg_id] = bridge

    def leave(self, leg_id: str, bridge: str | None = None) -> bool:
        """True when the leg left the bridge it was in (it is unbridged now)."""
        bridge = bridge or self._of.get(leg_id)
        if bridge is None:
            return False
        self._drop(leg_id, bridge)
        if self._of.get(leg_id) != bridge:
            return False
        del self._of[leg_id]
        return True

    def _drop(self, leg_id: str, bridge: str) -> None:
        members = self._members.get(bridge)
        if members is not None and leg_id in members:
            members.remove(leg_id)
            if not members:
                del self._members[bridge]

    def far_side(
        self, leg_id: str, legs: Mapping[str, _Leg], partner: Callable[[_Leg], str | None]
    ) -> str | None:
        """The real leg across ``leg_id``'s two-party bridge, through Local pairs (4 hops)."""
        seen, current = {leg_id}, leg_id
        for _ in range(4):
            others = [m for m in self._members.get(self._of.get(current, ""), ()) if m != current]
            if len(others) != 1 or others[0] in seen or others[0] not in legs:
                return None
            other = legs[others[0]]
            if not other.plumbing:
                return other.leg_id
            half = partner(other)
            if half is None or half in seen:
                return None
            seen |= {other.leg_id, half}
            current = half
        return None
