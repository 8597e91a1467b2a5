"""A fake Salesforce Lightning host for the Open CTI browser tests."""

from tests.fakes.lightning.host import HostRecord, LightningHost

__all__ = ["HostRecord", "LightningHost"]
