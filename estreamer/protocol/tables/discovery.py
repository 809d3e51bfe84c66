"""Discovery (RNA) host events, the connection chunk and IOC sets (fact sheet §8, §9).

Every record here starts with the discovery event header (§8), then either a few fixed fields
or one series-1 block. The fact sheet names these records but does not lay them out; the
layouts below were learned from the public eNcore 5.2.11 definitions
(CiscoSecurity/fp-05-firepower-cli @ 88b8ae19, `estreamer/definitions/records.py` and
`blocks_series1.py`; read, not copied) and are **eNcore only**: no real bytes checked.

Not covered yet (their blocks carry nested lists of fingerprints, servers and vulnerabilities):
10 new host (block 139), 11/12/16/17/51/52 server events (block 103), 15/35/107 client
application events, 18/53/101 OS events, 46–48 attribute events, 74–89 user-input events,
102/103 identity events."""

from estreamer.protocol.layout import (
    BLOB,
    IP,
    IPV4,
    MAC,
    STR,
    U8,
    U16,
    U32,
    U64,
    Block,
    Nested,
)
from estreamer.protocol.tables.connection import DISCOVERY_HEADER

HEADER = ("discovery_header", Nested(DISCOVERY_HEADER))

# Block 136 (5.1.1+): one NetFlow-style chunk of connection summary. IPv4 only (§7: "some
# legacy fields are 4-byte IPv4, e.g. ... connection chunk 136").
CONNECTION_CHUNK_136 = (
    ("initiator_ip", IPV4),
    ("responder_ip", IPV4),
    ("start_time", U32),
    ("application_id", U32),  # eNcore "applicationProto": the application protocol (→ 63)
    ("responder_port", U16),
    ("protocol", U8),
    ("connection_type", U8),
    ("netflow_detector_ip", IPV4),
    ("packets_sent", U64),
    ("packets_received", U64),
    ("bytes_sent", U64),
    ("bytes_received", U64),
    ("connections", U32),
)

# Block 95 (4.9+): a MAC address the host was seen with.
HOST_MAC_95 = (("ttl", U8), ("mac", MAC), ("primary", U8), ("last_seen", U32))

VLAN_14 = (("vlan_id", U16), ("vlan_type", U8), ("vlan_priority", U8))

STRING_INFORMATION_35 = (("value", STR),)

SERVER_BANNER_37 = (("port", U16), ("protocol", U8), ("banner", BLOB))

# Series 1 integer block (type 7, §7). Record 160 is the only record that carries one, and
# its integer is an IOC id (→ record 161), so the field is named for that.
INTEGER_7 = (("ioc_id", U32),)

BLOCKS = {
    (1, 7): INTEGER_7,
    (1, 14): VLAN_14,
    (1, 35): STRING_INFORMATION_35,
    (1, 37): SERVER_BANNER_37,
    (1, 95): HOST_MAC_95,
    (1, 136): CONNECTION_CHUNK_136,
}


def _with_block(block_type: int) -> tuple:
    return (HEADER, (None, Block(1, (block_type,), inline=True)))


def _with(*fields: tuple) -> tuple:
    return (HEADER, *fields)


_PORT = ("port", U16)

RECORDS = {
    13: ("New Network Protocol", "discovery", _with(("network_protocol", U16))),
    14: ("New Transport Protocol", "discovery", _with(("transport_protocol", U8))),
    19: ("Host Timeout", "discovery", _with()),
    20: ("Host IP Address Reused", "discovery", _with()),
    21: ("Host Deleted: Host Limit Reached", "discovery", _with()),
    22: ("Hops Change", "discovery", _with(("hops", U8))),
    23: ("TCP Port Closed", "discovery", _with(_PORT)),
    24: ("UDP Port Closed", "discovery", _with(_PORT)),
    25: ("TCP Port Timeout", "discovery", _with(_PORT)),
    26: ("UDP Port Timeout", "discovery", _with(_PORT)),
    27: ("MAC Information Change", "discovery", _with_block(95)),
    28: ("Additional MAC Detected for Host", "discovery", _with_block(95)),
    29: ("Host IP Address Changed", "discovery", _with(("new_ip", IP))),
    31: ("Host Identified as Router/Bridge", "discovery", _with(("host_type", U32))),
    34: ("VLAN Tag Information Update", "discovery", _with_block(14)),
    42: ("NetBIOS Name Change", "discovery", _with_block(35)),
    44: ("Host Dropped: Host Limit Reached", "discovery", _with()),
    45: ("Update Banner", "discovery", _with_block(37)),
    73: ("Connection Chunk", "connection", _with_block(136)),
    # 6.1+ (IOC set); 6.0's "IOC state" used another block, which is not followed here.
    160: ("Host IOC Set", "discovery", _with_block(7)),
}
