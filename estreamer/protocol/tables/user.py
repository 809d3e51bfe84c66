"""User activity: RUA user events 92–95 and VPN login/logoff 170/171 (fact sheet §8, §9).

Each record is the discovery event header (§8) and one series-1 user block. The fact sheet
names the records and the VPN block number (167) only; the block layouts were learned from
the public eNcore 5.2.11 definitions (CiscoSecurity/fp-05-firepower-cli @ 88b8ae19,
`estreamer/definitions/blocks_series1.py`; read, not copied) and are **eNcore only**.

Field names: eNcore's `protocol` in these blocks is the protocol the user was seen on, an
application protocol id (→ record 63, e.g. LDAP), so it is `application_protocol_id` here,
never confused with the IP protocol number that `protocol` means everywhere else."""

from estreamer.protocol.layout import IP, IPV4, STR, U8, U16, U32, U64, Block, ListOf, Nested
from estreamer.protocol.tables.connection import DISCOVERY_HEADER

# Block 158 (6.0+): a user's directory entry, for RUA 92 (dropped), 93 (removed), 94 (new).
USER_INFORMATION_158 = (
    ("user_id", U32),
    ("username", STR),
    ("realm_id", U32),
    ("application_protocol_id", U32),
    ("first_name", STR),
    ("last_name", STR),
    ("email", STR),
    ("department", STR),
    ("phone", STR),
    ("endpoint_profile_id", U32),
    ("security_group_id", U32),
    ("location_ipv6", IP),  # eNcore: uint128, the same 16 bytes as an address
)

_WHO = (
    ("timestamp", U32),
    ("user_ipv4", IPV4),  # legacy; the address is in `user_ip`
    ("username", STR),
    ("domain", STR),
    ("user_id", U32),
    ("realm_id", U32),
    ("endpoint_profile_id", U32),
    ("security_group_id", U32),
)

_HOW = (
    ("email", STR),
    ("user_ip", IP),
    ("location_ipv6", IP),
    ("login_type", U8),
    ("auth_type", U8),
    ("reported_by", STR),
)

# Block 159 (6.0/6.1): a user login, record 95.
USER_LOGIN_159 = (
    *_WHO[:8],
    ("application_id", U32),
    ("application_protocol_id", U32),
    *_HOW,
)

# Block 166 (6.2+): one VPN session inside block 167's list.
# UNCERTAIN: eNcore reads list items without a block header; the fact sheet's rule for list
# blocks (§7, G53 p240: a list holds blocks) says each item has one. We follow §7.
VPN_SESSION_166 = (
    ("index", U32),
    ("vpn_type", U8),
    ("group_policy", STR),
    ("vpn_connection_profile", STR),
    ("client_ip", IP),
    ("client_country", U16),
    ("client_os", STR),
    ("vpn_client_application", STR),
    ("connection_duration", U32),
    ("bytes_transmitted", U64),
    ("bytes_received", U64),
)

# Block 167 (6.2+): a user login/logoff update, records 95, 170 and 171.
USER_UPDATE_167 = (
    *_WHO,
    ("application_protocol_id", U32),
    ("port", U16),
    ("range_start", U16),
    ("start_port", U16),
    ("end_port", U16),
    *_HOW,
    ("description", STR),
    ("vpn_sessions", ListOf(Block(1, (166,)))),
)

BLOCKS = {
    (1, 158): USER_INFORMATION_158,
    (1, 159): USER_LOGIN_159,
    (1, 166): VPN_SESSION_166,
    (1, 167): USER_UPDATE_167,
}

HEADER = ("discovery_header", Nested(DISCOVERY_HEADER))


def _user(*block_types: int) -> tuple:
    return (HEADER, (None, Block(1, block_types, inline=True)))


RECORDS = {
    92: ("User Dropped", "user", _user(158)),
    93: ("User Removed", "user", _user(158)),
    94: ("New User Identification", "user", _user(158)),
    95: ("User Login", "user", _user(167, 159)),
    170: ("New VPN Login", "user", _user(167)),
    171: ("New VPN Logoff", "user", _user(167)),
}
