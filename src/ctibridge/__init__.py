"""ctibridge: phone-system channel events in, calls, CRM call logs and live agent call cards out."""

__version__ = "0.1.0"
__all__ = ["__version__"]
