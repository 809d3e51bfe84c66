"""estreamer: a client (and an FMC emulator) for the Cisco Firepower eStreamer protocol."""

__version__ = "0.1.0"
