"""Connection statistics (record 71) and the discovery event header (fact sheet §8, §10.7)."""

from estreamer.protocol.layout import IPV4, MAC, U8, U32, IP, Block, Nested, When

DISCOVERY_HEADER = (
    ("device_id", U32),
    ("legacy_ip", IPV4),
    ("mac_address", MAC),
    ("has_ipv6", U8),
    ("reserved", U8),
    ("event_second", U32),
    ("event_microsecond", U32),
    ("event_type", U32),
    ("event_subtype", U32),
    ("file_number", U32),
    ("file_position", U32),
    ("ipv6_address", When("has_ipv6", IP)),
)

BLOCKS: dict = {}

RECORDS = {
    71: (
        "Connection Statistics",
        "connection",
        (("discovery_header", Nested(DISCOVERY_HEADER)), (None, Block(1, None, inline=True))),
    ),
}
