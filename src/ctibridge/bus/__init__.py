"""Publish/subscribe between services. In-process today; nothing may assume one process."""

from ctibridge.bus.base import Bus, Message, Subscription
from ctibridge.bus.memory import MemoryBus

__all__ = ["Bus", "MemoryBus", "Message", "Subscription"]
