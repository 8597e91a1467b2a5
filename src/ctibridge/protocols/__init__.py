"""Sans-I/O PBX protocols: bytes or frames in, messages out. No asyncio here."""
