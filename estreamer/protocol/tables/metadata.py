"""Metadata records (fact sheet §7, §9, §10.2–§10.5): the names the FMC sends for the ids
that events carry. They carry no archive timestamp."""

from estreamer.protocol.layout import (
    STR,
    TEXT16,
    TEXT32,
    U8,
    U16,
    U32,
    UUID,
    Block,
    LengthU16,
    Raw,
    TextFrom,
)

ID_NAME = (("id", U32), ("name", TEXT32))
"""§10.3: u32 id, u32 length, name (no block header, no NUL)."""

ID_NAME_RECORDS = {
    55: "Client Application",
    58: "Criticality",
    59: "Network Protocol",
    60: "Attribute",
    61: "Scan Type",
    63: "Server",
    90: "Source Type",
    91: "Source Application",
    96: "Source Detector",
    109: "Web Application",
    120: "Access Control Rule Action",
    121: "URL Category",
    122: "URL Reputation",
    123: "Managed Device",
    128: "Malware Event Type",
    129: "Malware Event Subtype",
    130: "AMP Detector Type",
    131: "AMP File Type",
    281: "Security Intelligence Source/Destination",
    300: "Realm",
    302: "Security Group",
    350: "Netmap Domain",
    510: "File Type",
    515: "File Storage Status",
    516: "File Sandbox Status",
    517: "SPERO Disposition",
    518: "Archive File Status",
    519: "Static Analysis Status",
    602: "SSL Cipher Suite",
    604: "SSL Version",
    605: "SSL Server Certificate Status",
    606: "SSL Actual Action",
    607: "SSL Expected Action",
    608: "SSL Flow Status",
    613: "SSL URL Category",
}

# Series-2 metadata blocks (§7). Fields follow the block's 8-byte header.
BLOCKS = {
    (2, 14): (("uuid", UUID), ("name", STR)),
    (2, 15): (("revision", UUID), ("rule_id", U32), ("name", STR)),
    (2, 28): (("country_code", U16), ("name", STR)),
    (2, 57): (("id", U32), ("protocol", U32), ("name", STR)),
    (2, 59): (("id", U32), ("description", STR)),
    (2, 61): (("id", U32), ("name", STR), ("description", STR)),
    (2, 64): (("uuid", UUID), ("device_id", U32), ("name", STR)),
    # Record 280 (ENC3/ENC5): SI categories are named per access-control policy.
    (2, 22): (("id", U32), ("access_control_policy_uuid", UUID), ("name", STR)),
    # Record 301 (ENC3/ENC5).
    (2, 58): (("id", U32), ("profile_name", STR), ("full_name", STR)),
    # Records 260 and 270 (§9 names blocks 19/20; fields from eNcore 5.2.11
    # `blocks_series2.py`, read, not copied). ICMP types and codes are named per IP protocol
    # (ICMP and ICMPv6 reuse numbers), so the protocol is part of their key.
    (2, 19): (("icmp_type", U16), ("protocol", U16), ("description", STR)),
    (2, 20): (("icmp_code", U16), ("icmp_type", U16), ("protocol", U16), ("description", STR)),
    # Record 511 (§9 block 40; eNcore 5.2.11): a file's name and disposition by its SHA-256,
    # the same 32 raw bytes as a file event's `file_sha256`, so hex here too.
    (2, 40): (("file_sha256", Raw(32)), ("file_name", STR), ("disposition", U8),
              ("user_defined", U8)),
    # Record 614 (§9 block 50; eNcore 5.2.11): a certificate's details by its SHA-1
    # fingerprint, the same 20 raw bytes as an event's `ssl_certificate_fingerprint`.
    # eNcore reads the serial number as 20 raw bytes followed by its u32 length.
    (2, 50): (
        ("ssl_certificate_fingerprint", Raw(20)),
        ("public_key_sha1", Raw(20)),
        ("serial_number", Raw(20)),
        ("serial_number_length", U32),
        ("subject_common_name", STR),
        ("subject_organization", STR),
        ("subject_organizational_unit", STR),
        ("subject_country", STR),
        ("issuer_common_name", STR),
        ("issuer_organization", STR),
        ("issuer_organizational_unit", STR),
        ("issuer_country", STR),
        ("valid_start_time", U32),
        ("valid_end_time", U32),
    ),
}


def _one_block(block_type: int) -> tuple:
    """A record whose data is exactly one series-2 block of the given type."""
    return ((None, Block(2, (block_type,), inline=True)),)


# A UUID then a string block with no block header around them (records 282 and 600; eNcore
# only, no real bytes). Record 700 looks the same in eNcore but CAP shows it is block 14.
UUID_NAME = (("uuid", UUID), ("name", STR))

RECORDS = {
    4: ("Priority", "metadata", (("id", U32), ("name", TEXT16))),
    66: (
        "Rule Message",
        "metadata",
        (
            ("generator_id", U32),
            ("rule_id", U32),
            ("rule_revision", U32),
            ("signature_id", U32),
            ("message_length", LengthU16("message")),
            ("rule_uuid", UUID),
            ("rule_revision_uuid", UUID),
            ("message", TextFrom("message_length")),
        ),
    ),
    67: (
        "Classification",
        "metadata",
        (
            ("id", U32),
            ("name", TEXT16),
            ("description", TEXT16),
            ("uuid", UUID),
            ("revision_uuid", UUID),
        ),
    ),
    # The three texts are u32 length + bytes, not string blocks (§9, checked on ENCT).
    54: (
        "Fingerprint",
        "metadata",
        (("uuid", UUID), ("name", TEXT32), ("vendor", TEXT32), ("version", TEXT32)),
    ),
    69: (
        "Correlation Policy",
        "metadata",
        (
            ("id", U32),
            ("name", TEXT16),
            ("description", TEXT16),
            ("uuid", UUID),
            ("revision_uuid", UUID),
        ),
    ),
    # The fact sheet gives "3 uuids" without meanings; the third is named after eNcore's
    # "whitelist" UUID (UNCERTAIN what it refers to).
    70: (
        "Correlation Rule",
        "metadata",
        (
            ("id", U32),
            ("name", TEXT16),
            ("description", TEXT16),
            ("rule_event_type", TEXT16),
            ("uuid", UUID),
            ("revision_uuid", UUID),
            ("allow_list_uuid", UUID),
        ),
    ),
    # §9: "fixed fields, then eight u32-length texts (ENC5)". SFS has seven (no solution);
    # eNcore 5.2.11's eight are followed, and a record that ends after seven is kept with a
    # decode error rather than guessed.
    57: (
        "Vulnerability",
        "metadata",
        (
            ("id", U32),
            ("impact", U32),
            ("exploits", U8),
            ("remote", U8),
            ("entry_date", TEXT32),
            ("published_date", TEXT32),
            ("modified_date", TEXT32),
            ("title", TEXT32),
            ("short_description", TEXT32),
            ("description", TEXT32),
            ("technical_description", TEXT32),
            ("solution", TEXT32),
        ),
    ),
    # The FMC's own users (who changed the network map, imported scans). §9 says eNcore 3
    # special-cases it; eNcore 5.2.11 reads it as series 2 block 57, like record 98.
    62: ("System User", "metadata", _one_block(57)),
    98: ("User", "metadata", _one_block(57)),
    # A vulnerability a third-party scanner reported: no discovery header (eNcore 5.2.11
    # `records.py`, SFS `scan_vuln_record`, which agree). Four u32-length texts.
    106: (
        "Third Party Scanner Vulnerability",
        "metadata",
        (
            ("id", U32),
            ("scanner_type", U32),
            ("title", TEXT32),
            ("description", TEXT32),
            ("cve_id", TEXT32),
            ("bugtraq_id", TEXT32),
        ),
    ),
    115: ("Security Zone", "metadata", _one_block(14)),
    116: ("Interface", "metadata", _one_block(14)),
    117: ("Access Control Policy Name", "metadata", _one_block(14)),
    118: ("Intrusion Policy", "metadata", _one_block(14)),
    119: ("Access Control Rule", "metadata", _one_block(15)),
    124: ("Access Control Rule Reason", "metadata", _one_block(59)),
    127: ("Cloud Name", "metadata", _one_block(14)),
    # Keyed by the same 16 bytes that events carry as `security_context`, so it is hex here
    # as there (eNcore prints a UUID); a decorator joins the two without converting.
    132: ("Security Context Name", "metadata", (("security_context", Raw(16)), ("name", STR))),
    145: ("Access Control Policy", "metadata", _one_block(64)),
    146: ("Prefilter Policy", "metadata", _one_block(64)),
    147: ("Tunnel or Prefilter Rule", "metadata", _one_block(64)),
    280: ("Security Intelligence Category (per policy)", "metadata", _one_block(22)),
    282: ("Security Intelligence Category", "metadata", UUID_NAME),
    301: ("Endpoint Profile", "metadata", _one_block(58)),
    320: ("DNS Record Type", "metadata", _one_block(61)),
    321: ("DNS Response Type", "metadata", _one_block(61)),
    322: ("Sinkhole", "metadata", _one_block(14)),
    260: ("ICMP Type", "metadata", _one_block(19)),
    270: ("ICMP Code", "metadata", _one_block(20)),
    511: ("File SHA", "metadata", _one_block(40)),
    520: ("Geolocation", "metadata", _one_block(28)),
    # UNCERTAIN: §9 gives "u32 block type, u32 length, uuid, string" without the type value.
    # eNcore spells 530 exactly as it spells 700, which CAP shows is block 14, so 530 is read
    # as block 14; any other type comes out as raw hex with a notice.
    530: ("File Policy Name", "metadata", _one_block(14)),
    600: ("SSL Policy", "metadata", UUID_NAME),
    # eNcore prints the revision as hex; it is a revision UUID like record 119's.
    601: ("SSL Rule", "metadata", (("revision", UUID), ("rule_id", U32), ("name", STR))),
    614: ("SSL Certificate Details", "metadata", _one_block(50)),
    700: ("Network Analysis Policy", "metadata", _one_block(14)),
    **{rtype: (name, "metadata", ID_NAME) for rtype, name in ID_NAME_RECORDS.items()},
}
