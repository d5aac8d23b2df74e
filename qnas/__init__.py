"""qnas: noise-aware quantum architecture search on calibrated IBM devices."""

__version__ = "0.1.0"
