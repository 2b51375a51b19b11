"""fwtriage: firmware backdoor triage."""

__version__ = "0.1.0"
