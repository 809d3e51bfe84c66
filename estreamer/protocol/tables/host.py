"""Host profiles: the Full Host Profile block that answers a Host Data Request (fact sheet
§6.3–§6.4), and the RNA blocks nested in it.

A Single (6) or Multiple (7) Host Data message carries no record header: its body is exactly
one series-1 block, the full host profile (G53 p51–52: "Host data messages do not have a
record type field"; SFS re-reads the body as an RNA block). `HOST_DATA` is that body as a
layout, so the same engine that decodes records decodes profiles, and the emulator encodes
them from the same table.

Sources and decisions (read, not copied; the 6.x/7.x field tables were not reachable):

- Block 149, "Full Host Profile 5.3+" (supersedes 140): the block number and its first
  fields (host ID, then a list of IP addresses) are from the 7.1 guide's "Understanding Host
  Data Structures" page; its tail (VDB, third-party/VDB and third-party-scan vulnerability
  lists, attribute values, mobile, jailbroken) from G53 p402. The middle follows the 5.x
  guide's legacy profiles (135 on G53 p685, 140 on p696: hops, fingerprint generic lists,
  TCP/UDP server lists, protocol lists, MACs, last seen, host type, criticality, VLAN,
  client applications, NetBIOS name, notes) and the order of Sourcefire's own table for
  the 4.x profile (SFS `SFRNABlocks.pm`, block 47), with the nine fingerprint lists in the
  order eNcore 5.2.11 reads them in its host profile block 139
  (CiscoSecurity/fp-05-firepower-cli @ 88b8ae19, `blocks_series1.py`). **UNCERTAIN**: G53
  p402 shows one more generic list after `jailbroken`; a real 149 longer than this layout
  keeps its unread bytes as `unparsed_tail` (the engine never drops them).
- Block 143, one host IP address (5.3+): address and last-seen time. **UNCERTAIN**
  (decided; no field table reached).
- Servers: the guide names "Full Server" blocks in the profile; their 5.3+ layout was not
  reachable, so the TCP/UDP lists read eNcore's host server block 103 (port, hits, last
  used, server information 117 with sub-servers 1, confidence, web applications 123). A
  server block of another type inside the list is kept as raw hex with a note.
- Client applications 112, host vulnerability 85, OS fingerprint 130 (also G53 p341),
  mobile device 131, protocol 4: eNcore 5.2.11. Attribute value 48 (`id, type, integer
  value, text value`): SFS only.

Blocks that discovery events share (sub-servers 1, protocols 4, vulnerabilities 85, servers
103, client applications 112, server information 117, web applications 123, OS fingerprints
130, mobile devices 131, MACs 95) are defined once, in `tables/discovery.py`, and read from
the same registry here."""

from collections.abc import Mapping
from typing import Any

from estreamer.errors import DecodeError
from estreamer.protocol.layout import (
    IP,
    STR,
    U8,
    U16,
    U32,
    UUID,
    Block,
    ListOf,
    Notes,
    compile_layout,
)

GENERIC_LIST = 31  # fingerprint and vulnerability lists are generic lists (§7)


def _list(block_type: int) -> ListOf:
    return ListOf(Block(1, (block_type,)))


def _generic(block_type: int) -> ListOf:
    return ListOf(Block(1, (block_type,)), list_type=GENERIC_LIST)


# Block 48: one host attribute value (user-defined attributes, → record 60 names the ID).
ATTRIBUTE_VALUE_48 = (
    ("attribute_id", U32),
    ("attribute_type", U32),
    ("integer_value", U32),
    ("text_value", STR),
)

# Block 143 (5.3+): one address of the host.
HOST_IP_ADDRESS_143 = (
    ("ip_address", IP),
    ("last_seen", U32),
)

FINGERPRINT_LISTS = (
    "os_derived_fingerprints",
    "server_fingerprints",
    "client_fingerprints",
    "smb_fingerprints",
    "dhcp_fingerprints",
    "mobile_device_fingerprints",
    "ipv6_server_fingerprints",
    "ipv6_client_fingerprints",
    "ipv6_dhcp_fingerprints",
    "user_agent_fingerprints",
)
"""The profile's fingerprint lists in wire order; the first non-empty one is the OS the FMC
shows for the host."""

# Block 149 (5.3+): the full host profile.
FULL_HOST_PROFILE_149 = (
    ("host_id", UUID),
    ("ip_addresses", _list(143)),
    ("hops", U8),
    *((name, _generic(130)) for name in FINGERPRINT_LISTS),
    ("tcp_servers", _list(103)),
    ("udp_servers", _list(103)),
    ("network_protocols", _list(4)),
    ("transport_protocols", _list(4)),
    ("mac_addresses", _list(95)),
    ("last_seen", U32),
    ("host_type", U32),
    ("business_criticality", U16),
    ("vlan_id", U16),
    ("vlan_type", U8),
    ("vlan_priority", U8),
    ("client_applications", _list(112)),
    ("netbios_name", STR),
    ("notes", STR),
    ("vulnerabilities", _generic(85)),
    ("third_party_vdb_vulnerabilities", _generic(85)),
    ("third_party_scan_vulnerabilities", _generic(85)),
    ("attributes", _list(48)),
    ("mobile", U8),
    ("jailbroken", U8),
)

FULL_HOST_PROFILE = 149

BLOCKS = {
    (1, 48): ATTRIBUTE_VALUE_48,
    (1, 143): HOST_IP_ADDRESS_143,
    (1, FULL_HOST_PROFILE): FULL_HOST_PROFILE_149,
}

RECORDS: dict = {}  # host profiles come in their own messages, never as records

HOST_DATA = ((None, Block(1, (FULL_HOST_PROFILE,), inline=True)),)
"""The body of a Single/Multiple Host Data message: one full host profile block."""

_HOST_DATA = compile_layout(HOST_DATA)


def decode_host_profile(body: bytes) -> tuple[dict[str, Any], Notes]:
    """One Host Data message body → the profile as a dict (`block_type` first), and the
    notes the decode left (unknown nested blocks, unread tails). Raises DecodeError when the
    body is not one whole block that fits its layout."""
    notes: Notes = []
    profile, end = _HOST_DATA.decode(body, 0, len(body), notes)
    if end != len(body):
        raise DecodeError(f"{len(body) - end} bytes after the host profile block")
    return profile, notes


def encode_host_profile(profile: Mapping[str, Any]) -> bytes:
    """A profile dict (shaped like `decode_host_profile`'s) → a Host Data message body."""
    return _HOST_DATA.encode(profile)
