"""Pure call-state layer: PBX messages → channel events → calls. No I/O, no clock, no asyncio."""
