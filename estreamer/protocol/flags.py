"""Request flags, initial-timestamp constants and extended-request event codes
(fact sheet §3 and §4.2)."""

from enum import IntEnum, IntFlag

TIMESTAMP_OLDEST = 0x00000000
"""Initial timestamp: start from the oldest data the FMC still has."""
TIMESTAMP_NOW = 0xFFFFFFFF
"""Initial timestamp: only events from the moment the client connects."""

ESTREAMER_SERVICE_ID = 6667
"""The service a Streaming Request (2049) picks from the Streaming Information (2051)."""


class RequestFlags(IntFlag):
    """Bits of the Event Stream Request's flag word. Bit n is 1 << n (fact sheet §3.2).
    Bits marked UNCERTAIN there (25, 26, 28) are named only by one independent client."""

    PACKETS = 1 << 0
    METADATA_V1 = 1 << 1
    INTRUSION_V1 = 1 << 2
    DISCOVERY_V1 = 1 << 3
    CORRELATION_V1 = 1 << 4
    IMPACT_ALERTS = 1 << 5
    INTRUSION = 1 << 6  # newer intrusion format with impact flags / IPv6
    DISCOVERY_V2 = 1 << 7
    CONNECTION_V1 = 1 << 8
    CORRELATION_V2 = 1 << 9
    DISCOVERY_V3 = 1 << 10
    HOST_ONLY = 1 << 11
    CONNECTION_V3 = 1 << 12
    CORRELATION_V3 = 1 << 13
    METADATA_V2 = 1 << 14
    METADATA_V3 = 1 << 15
    RESERVED_16 = 1 << 16
    DISCOVERY_V4 = 1 << 17
    CONNECTION_V4 = 1 << 18
    CORRELATION_V4 = 1 << 19
    METADATA = 1 << 20  # metadata v4, the current one
    USER = 1 << 21
    CORRELATION_V5 = 1 << 22
    ARCHIVE_TIMESTAMPS = 1 << 23  # extended 16-byte record header on event records
    DISCOVERY_V5 = 1 << 24
    DISCOVERY_V6 = 1 << 25  # UNCERTAIN: one source only
    CONNECTION_V5 = 1 << 26  # UNCERTAIN: one source only
    EXTRA_DATA = 1 << 27
    DISCOVERY_V7 = 1 << 28  # UNCERTAIN: one source only
    CORRELATION = 1 << 29  # correlation (policy) v6
    EXTENDED = 1 << 30  # extended request: 2051 / 2049 exchange
    UNUSED_31 = 1 << 31


ENCORE_DEFAULT_FLAGS = (
    RequestFlags.PACKETS
    | RequestFlags.IMPACT_ALERTS
    | RequestFlags.INTRUSION
    | RequestFlags.METADATA
    | RequestFlags.ARCHIVE_TIMESTAMPS
    | RequestFlags.EXTRA_DATA
    | RequestFlags.EXTENDED
)
"""What eNcore sends with its default configuration: 0x48900061."""


class EventCode(IntEnum):
    """Event families named in a Streaming Request's (version, event type) list (§4.2)."""

    INTRUSION = 12
    METADATA = 21
    CORRELATION = 31
    DISCOVERY = 61
    CONNECTION = 71
    USER = 91
    MALWARE = 101
    FILE = 111
    IMPACT = 131


ENCORE_6X_EVENTS: tuple[tuple[int, int], ...] = (
    (9, EventCode.INTRUSION),
    (4, EventCode.METADATA),
    (9, EventCode.CORRELATION),
    (11, EventCode.DISCOVERY),
    (14, EventCode.CONNECTION),
    (4, EventCode.USER),
    (7, EventCode.MALWARE),
    (6, EventCode.FILE),
    (2, EventCode.IMPACT),
)
"""The (version, event type) list eNcore 3.x sends for FMC 6.x, in its order."""

LATEST_EVENTS: tuple[tuple[int, int], ...] = (
    (11, EventCode.INTRUSION),
    (4, EventCode.METADATA),
    (9, EventCode.CORRELATION),
    (11, EventCode.DISCOVERY),
    (17, EventCode.CONNECTION),
    (7, EventCode.USER),
    (8, EventCode.MALWARE),
    (7, EventCode.FILE),
    (2, EventCode.IMPACT),
)
"""The newest versions any source names (eNcore 5.x, FMC 7.x)."""
