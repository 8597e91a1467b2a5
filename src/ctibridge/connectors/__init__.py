"""asyncio drivers for the phone systems: connect, log in, read, reconnect, resync."""
