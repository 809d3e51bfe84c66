"""Discovery (RNA) host events, user-input events, the connection chunk and IOC sets (fact
sheet §8, §9).

Every record here starts with the discovery event header (§8), then either a few fixed fields
or one series-1 block. The fact sheet names these records but does not lay them out; the
layouts below were learned from the public eNcore 5.2.11 definitions
(CiscoSecurity/fp-05-firepower-cli @ 88b8ae19, `estreamer/definitions/records.py` and
`blocks_series1.py`; read, not copied) and are **eNcore only**: no real bytes checked.
eNcore 5.2.11 names three blocks it never lays out (53 OS data, 55 attribute definition,
146 attribute address); those come from the Sourcefire Perl SDK (`SFRNABlocks.pm`, SFS in the
fact sheet §0; read, not copied) and are marked UNCERTAIN where the SDK predates them.

Host blocks nest: a host profile (139) holds lists of OS fingerprints (130), servers (103,
each a list of server information 117 with sub-servers 1), client applications (112, with
web applications 123 and vulnerabilities 85), protocols (4) and MAC addresses (95). A list is
a series-1 list block (type 11 or 31) whose items are whole blocks (§7); `ListOf` reads it.
Host profile requests (message types 5–7) reuse these blocks: import them from here.

Source ids: most user-input blocks carry `source_type` (→ record 90: RNA, user, scanner,
application) and `source_id`, whose meaning depends on the type (a user, or a source
application → record 91), so only `source_type` is decorated."""

from estreamer.protocol.layout import (
    BLOB,
    GENERIC_LIST_BLOCK,
    IP,
    IPV4,
    MAC,
    STR,
    U8,
    U16,
    U32,
    U64,
    UUID,
    Block,
    ListOf,
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

# Series 1 integer block (type 7, §7). Record 160 is the only record that carries one on its
# own, and its integer is an IOC id (→ record 161), so the registry names it for that; lists of
# integers elsewhere name their items through `Block(..., layout=...)`.
INTEGER_7 = (("ioc_id", U32),)


def _items(block_type: int, *fields: tuple) -> ListOf:
    """A list block of `block_type` items; `fields` renames a generic block's fields."""
    return ListOf(Block(1, (block_type,), layout=fields or None))


def _generic(block_type: int) -> ListOf:
    """A generic list block (type 31): the guide's form for fingerprint lists (§7)."""
    return ListOf(Block(1, (block_type,)), list_type=GENERIC_LIST_BLOCK)


# -- small blocks the host blocks are built from --------------------------------------------

# Block 1: a sub-server (e.g. an Apache module) of a server.
SUB_SERVER_1 = (("sub_server", STR), ("vendor", STR), ("version", STR))

# Block 4: one protocol number; the list holding it says which kind: a network protocol
# (EtherType, → record 59) or an IP protocol number.
PROTOCOL_4 = (("protocol_number", U16),)

# Block 63: a MAC address given by a user (user-input events).
MAC_SPECIFICATION_63 = (("mac", MAC),)

# Block 67: a fix (patch) applied to a user-set product.
FIX_67 = (("fix_id", U32),)

# Block 141 (5.2+): an address range given by a user or a scanner.
IP_RANGE_141 = (("start_ip", IP), ("end_ip", IP))

# Block 123 (5.0+): a web application seen on a server or client.
WEB_APPLICATION_123 = (("web_application_id", U32),)

# Block 85 (4.9+): a vulnerability of a host's client application.
HOST_VULNERABILITY_85 = (
    ("vulnerability_id", U32),  # → record 57
    ("invalid_flags", U8),
    ("vulnerability_type", U32),
)

_IP_RANGES = ("ip_ranges", _items(141))
_MAC_ADDRESSES = ("mac_addresses", _items(63))

# -- servers, client applications, operating systems (host profile pieces) ------------------

# Block 117 (5.0+): what a server on a port was identified as, and by which source.
SERVER_INFORMATION_117 = (
    ("application_id", U32),  # the server's application protocol → record 63
    ("vendor", STR),
    ("version", STR),
    ("last_used", U32),
    ("source_type", U32),
    ("source_id", U32),
    ("sub_servers", _items(1)),
)

# Block 103 (4.10+): a server on a host (records 11, 12, 16, 17, 51, 52; host profile lists).
# eNcore notes the guide's trailing web-application length and data do not occur on the wire.
HOST_SERVER_103 = (
    ("port", U16),
    ("hits", U32),
    ("last_used", U32),
    ("server_information", _items(117)),
    ("confidence", U32),
    ("web_applications", _items(123)),
)

# Block 122 (5.0+): a client application on a host (records 15, 35, 107).
HOST_CLIENT_APPLICATION_122 = (
    ("hits", U32),
    ("last_used", U32),
    ("client_application_id", U32),  # → record 55
    ("application_protocol_id", U32),  # → record 63
    ("version", STR),
    ("web_applications", _items(123)),
)

# Block 112 (5.0+): a client application as a host profile lists it. UNCERTAIN: eNcore calls
# the id "applicationId"; next to block 122's layout it is read as the client application.
FULL_HOST_CLIENT_APPLICATION_112 = (
    ("hits", U32),
    ("last_used", U32),
    ("client_application_id", U32),
    ("version", STR),
    ("web_applications", _items(123)),
    ("vulnerabilities", _items(85)),
)

# Block 131 (5.1+): a mobile device an OS fingerprint matched.
MOBILE_DEVICE_131 = (
    ("mobile_device", STR),
    ("last_seen", U32),
    ("mobile", U32),
    ("jailbroken", U32),
)

# Block 130 (5.1+): an OS fingerprint of a host (record 101; host profile lists).
OS_FINGERPRINT_130 = (
    ("os_fingerprint_uuid", UUID),  # → record 54
    ("fingerprint_type", U32),
    ("source_type", U32),
    ("source_id", U32),
    ("last_seen", U32),
    ("ttl_difference", U8),
    ("mobile_devices", _generic(131)),
)

# Block 53 (3.5+): the OS the host was identified as (records 18, 53). From SFS (eNcore names
# the block but has no layout for it): u32 confidence, then the fingerprint UUID.
OPERATING_SYSTEM_53 = (
    ("confidence", U32),
    ("os_fingerprint_uuid", UUID),
)

# Block 139 (5.2+): a whole host profile (record 10). The nine fingerprint lists say which
# traffic the fingerprint came from.
_FINGERPRINTS = tuple(
    (f"{kind}_fingerprints", _generic(130))
    for kind in ("server", "client", "smb", "dhcp", "mobile_device", "ipv6_server",
                 "ipv6_client", "ipv6_dhcp", "user_agent")
)
HOST_PROFILE_139 = (
    ("ip_address", IP),
    ("hops", U8),
    ("primary_secondary", U8),
    *_FINGERPRINTS,
    ("tcp_servers", _items(103)),
    ("udp_servers", _items(103)),
    ("network_protocols", _items(4)),
    ("transport_protocols", _items(4)),
    ("mac_addresses", _items(95)),
    ("last_seen", U32),
    ("host_type", U32),
    ("mobile", U8),
    ("jailbroken", U8),
    ("vlan_presence", U8),
    ("vlan_id", U16),
    ("vlan_type", U8),
    ("vlan_priority", U8),
    ("client_applications", _items(112)),
    ("netbios_name", STR),
)

# Block 94 (5.1+): a host identity (which fingerprint or server) in conflict or timed out.
IDENTITY_94 = (
    ("source_type", U32),
    ("source_id", U32),
    ("identity_uuid", UUID),
    ("port", U16),
    ("protocol", U16),
    ("server_map_id", U32),
)

# -- host attributes (records 46–48) ----------------------------------------------------------

# Block 39: one value of a list-type host attribute.
ATTRIBUTE_LIST_ITEM_39 = (("id", U32), ("name", STR))

# Block 38 (SFS): an address an attribute is auto-assigned to, IPv4 with a prefix length.
ATTRIBUTE_ADDRESS_38 = (("attribute_id", U32), ("ip_address", IPV4), ("prefix_bits", U32))

# Block 146 (5.2+). UNCERTAIN: eNcore names it without a layout and SFS predates it; it is
# read as block 38 with a 16-byte address, the way every other 5.2 block widened IPv4.
ATTRIBUTE_ADDRESS_146 = (("attribute_id", U32), ("ip_address", IP), ("prefix_bits", U32))

# Block 55 (4.7+): a host attribute definition. From SFS (eNcore names it without a layout).
# UNCERTAIN: SFS calls the first word "uid", which it uses elsewhere where eNcore says source
# id, so it is `source_id` here; the address list may hold block 38 or 146.
ATTRIBUTE_DEFINITION_55 = (
    ("source_id", U32),
    ("attribute_uuid", UUID),
    ("attribute_id", U32),  # → record 60
    ("attribute_name", STR),
    ("attribute_type", U32),
    ("attribute_category", U32),
    ("auto_assign_start", U32),
    ("auto_assign_end", U32),
    ("auto_assign_ip", IPV4),
    ("list_items", _items(39)),
    ("addresses", ListOf(Block(1, (146, 38)))),
)

# -- user input (records 74–89) ---------------------------------------------------------------

# Block 57 (4.7+): a protocol a user added to or deleted from hosts.
USER_PROTOCOL_57 = (
    _IP_RANGES,
    _MAC_ADDRESSES,
    ("protocol_type", U8),  # network or transport protocol
    ("protocol_number", U16),
)

# Block 83 (4.7+): records 76 and 88.
USER_PROTOCOL_LIST_83 = (
    ("source_type", U32),
    ("source_id", U32),
    ("protocols", _items(57)),
)

# Block 138 (5.1.1+): a client application a user added or deleted.
USER_CLIENT_APPLICATION_138 = (
    _IP_RANGES,
    ("application_protocol_id", U32),
    ("client_application_id", U32),
    ("version", STR),
    ("payload_type", U32),
    ("web_application_id", U32),
)

# Block 60: records 77 and 87.
USER_CLIENT_APPLICATION_LIST_60 = (
    ("source_type", U32),
    ("source_id", U32),
    ("client_applications", _items(138)),
)

# Block 76: a server a user deleted.
USER_SERVER_76 = (_IP_RANGES, ("port", U16), ("protocol", U16))

# Block 77: record 79. Note the order: source id before source type, unlike block 60.
USER_SERVER_LIST_77 = (
    ("source_id", U32),
    ("source_type", U32),
    ("servers", _items(76)),
)

# Block 78 (4.7+): hosts a user added or deleted (records 78, 85).
USER_HOSTS_78 = (_IP_RANGES, _MAC_ADDRESSES, ("source_id", U32), ("source_type", U32))

# Block 124 (5.0+): one vulnerability a user marked valid or invalid.
USER_VULNERABILITY_124 = (
    _IP_RANGES,
    ("port", U16),
    ("protocol", U16),
    ("vulnerability_id", U32),
    ("third_party_vulnerability_uuid", UUID),
    ("description", STR),
    ("client_application_id", U32),
    ("application_protocol_id", U32),
    ("version", STR),
)

# Block 80 (4.7+): records 80 and 81. UNCERTAIN: eNcore notes that the guide's diagram and
# table disagree about the third word; it reads a u32, kept as `vulnerability_type`.
USER_VULNERABILITY_CHANGE_80 = (
    ("source_type", U32),
    ("source_id", U32),
    ("vulnerability_type", U32),
    ("vulnerabilities", _items(124)),
)

# Block 81 (4.7+): record 82.
USER_CRITICALITY_CHANGE_81 = (
    _IP_RANGES,
    ("source_id", U32),
    ("source_type", U32),
    ("criticality_id", U32),  # → record 58
)

# Block 82 (4.7+): records 83 and 84.
USER_ATTRIBUTE_VALUE_82 = (
    _IP_RANGES,
    ("source_id", U32),
    ("source_type", U32),
    ("attribute_id", U32),  # → record 60
    ("attribute_value", BLOB),
)

# Block 134 (5.1+): a product (OS or server) a user or scanner set on hosts (74, 75, 86).
USER_PRODUCT_134 = (
    ("source_id", U32),
    ("source_type", U32),
    _IP_RANGES,
    ("port", U16),
    ("protocol", U16),
    ("drop_user_product", U32),
    ("custom_vendor", STR),
    ("custom_product", STR),
    ("custom_version", STR),
    ("software_id", U32),
    ("application_id", U32),  # eNcore "serverId": the server's application → record 63
    ("vendor_id", U32),
    ("product_id", U32),
    ("version_major", STR),
    ("version_minor", STR),
    ("version_revision", STR),
    ("to_version_major", STR),
    ("to_version_minor", STR),
    ("to_version_revision", STR),
    ("build", STR),
    ("patch", STR),
    ("extension", STR),
    ("os_fingerprint_uuid", UUID),  # eNcore "osUuid" → record 54
    ("device", STR),
    ("mobile", U8),
    ("jailbroken", U8),
    ("fixes", _items(67)),
)

# Block 108 (4.10+): one generic result a scanner reported.
GENERIC_SCAN_RESULT_108 = (
    ("port", U16),
    ("protocol", U16),
    ("sub_server", STR),
    ("value", STR),
    ("sub_server_unformatted", STR),
    ("value_unformatted", STR),
)

# Block 109 (4.10+): one vulnerability a scanner reported. Its id is text (the scanner's).
SCAN_VULNERABILITY_109 = (
    ("port", U16),
    ("protocol", U16),
    ("scanner_vulnerability_id", STR),
    ("name", STR),
    ("description", STR),
    ("name_clean", STR),
    ("description_clean", STR),
    ("bugtraq_ids", _items(7, ("bugtraq_id", U32))),
    ("cve_ids", _items(35, ("cve_id", STR))),
)

# Block 142 (5.2+): a scan result a user imported (record 89). eNcore's "userId" is the FMC
# user who added it (→ record 62, system users), not an identity user (98).
SCAN_RESULT_142 = (
    ("system_user_id", U32),
    ("scan_type", U32),  # → record 61
    ("ip_address", IP),
    ("port", U16),
    ("protocol", U16),
    ("flag", U16),
    ("vulnerabilities", _items(109)),
    ("generic_scan_results", _items(108)),
    ("user_products", _items(134)),
)

BLOCKS = {
    (1, 1): SUB_SERVER_1,
    (1, 4): PROTOCOL_4,
    (1, 7): INTEGER_7,
    (1, 14): VLAN_14,
    (1, 35): STRING_INFORMATION_35,
    (1, 37): SERVER_BANNER_37,
    (1, 38): ATTRIBUTE_ADDRESS_38,
    (1, 39): ATTRIBUTE_LIST_ITEM_39,
    (1, 53): OPERATING_SYSTEM_53,
    (1, 55): ATTRIBUTE_DEFINITION_55,
    (1, 57): USER_PROTOCOL_57,
    (1, 60): USER_CLIENT_APPLICATION_LIST_60,
    (1, 63): MAC_SPECIFICATION_63,
    (1, 67): FIX_67,
    (1, 76): USER_SERVER_76,
    (1, 77): USER_SERVER_LIST_77,
    (1, 78): USER_HOSTS_78,
    (1, 80): USER_VULNERABILITY_CHANGE_80,
    (1, 81): USER_CRITICALITY_CHANGE_81,
    (1, 82): USER_ATTRIBUTE_VALUE_82,
    (1, 83): USER_PROTOCOL_LIST_83,
    (1, 85): HOST_VULNERABILITY_85,
    (1, 94): IDENTITY_94,
    (1, 95): HOST_MAC_95,
    (1, 103): HOST_SERVER_103,
    (1, 108): GENERIC_SCAN_RESULT_108,
    (1, 109): SCAN_VULNERABILITY_109,
    (1, 112): FULL_HOST_CLIENT_APPLICATION_112,
    (1, 117): SERVER_INFORMATION_117,
    (1, 122): HOST_CLIENT_APPLICATION_122,
    (1, 123): WEB_APPLICATION_123,
    (1, 124): USER_VULNERABILITY_124,
    (1, 130): OS_FINGERPRINT_130,
    (1, 131): MOBILE_DEVICE_131,
    (1, 134): USER_PRODUCT_134,
    (1, 136): CONNECTION_CHUNK_136,
    (1, 138): USER_CLIENT_APPLICATION_138,
    (1, 139): HOST_PROFILE_139,
    (1, 141): IP_RANGE_141,
    (1, 142): SCAN_RESULT_142,
    (1, 146): ATTRIBUTE_ADDRESS_146,
}


def _with_block(block_type: int) -> tuple:
    return (HEADER, (None, Block(1, (block_type,), inline=True)))


def _with(*fields: tuple) -> tuple:
    return (HEADER, *fields)


_PORT = ("port", U16)

RECORDS = {
    10: ("New Host", "discovery", _with_block(139)),
    11: ("New TCP Server", "discovery", _with_block(103)),
    12: ("New UDP Server", "discovery", _with_block(103)),
    13: ("New Network Protocol", "discovery", _with(("network_protocol", U16))),
    14: ("New Transport Protocol", "discovery", _with(("transport_protocol", U8))),
    15: ("New Client Application", "discovery", _with_block(122)),
    16: ("TCP Server Information Update", "discovery", _with_block(103)),
    17: ("UDP Server Information Update", "discovery", _with_block(103)),
    18: ("OS Information Update", "discovery", _with_block(53)),
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
    35: ("Client Application Timeout", "discovery", _with_block(122)),
    42: ("NetBIOS Name Change", "discovery", _with_block(35)),
    44: ("Host Dropped: Host Limit Reached", "discovery", _with()),
    45: ("Update Banner", "discovery", _with_block(37)),
    46: ("Add Host Attribute", "discovery", _with_block(55)),
    47: ("Update Host Attribute", "discovery", _with_block(55)),
    48: ("Delete Host Attribute", "discovery", _with_block(55)),
    51: ("TCP Server Confidence Update", "discovery", _with_block(103)),
    52: ("UDP Server Confidence Update", "discovery", _with_block(103)),
    53: ("OS Confidence Update", "discovery", _with_block(53)),
    73: ("Connection Chunk", "connection", _with_block(136)),
    # 74–89: changes a user (or an imported scan) made to the network map.
    74: ("User Set OS", "discovery", _with_block(134)),
    75: ("User Set Server", "discovery", _with_block(134)),
    76: ("User Delete Protocol", "discovery", _with_block(83)),
    77: ("User Delete Client Application", "discovery", _with_block(60)),
    78: ("User Delete Address", "discovery", _with_block(78)),
    79: ("User Delete Server", "discovery", _with_block(77)),
    80: ("User Set Valid Vulnerabilities", "discovery", _with_block(80)),
    81: ("User Set Invalid Vulnerabilities", "discovery", _with_block(80)),
    82: ("User Set Host Criticality", "discovery", _with_block(81)),
    83: ("User Set Attribute Value", "discovery", _with_block(82)),
    84: ("User Delete Attribute Value", "discovery", _with_block(82)),
    85: ("User Add Host", "discovery", _with_block(78)),
    86: ("User Add Server", "discovery", _with_block(134)),
    87: ("User Add Client Application", "discovery", _with_block(60)),
    88: ("User Add Protocol", "discovery", _with_block(83)),
    89: ("User Add Scan Result", "discovery", _with_block(142)),
    101: ("New OS", "discovery", _with_block(130)),
    102: ("Identity Conflict", "discovery", _with_block(94)),
    103: ("Identity Timeout", "discovery", _with_block(94)),
    107: ("Client Application Update", "discovery", _with_block(122)),
    # 6.1+ (IOC set); 6.0's "IOC state" used another block, which is not followed here.
    160: ("Host IOC Set", "discovery", _with_block(7)),
}
