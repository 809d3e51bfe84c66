"""A deterministic history of eStreamer records for the FMC emulator.

`History(seed=…)` builds metadata first (devices, zones, interfaces, policies, rules, names
for applications, users, countries, file and malware types, OS fingerprints, correlation
policies, vulnerabilities, TLS/DNS/Security Intelligence details, ICMP types, rule
documentation … every metadata record type with a table), then events, each with an archive
timestamp, several per second, in roughly the proportions an FMC shows: mostly connections
(71, now and then a NetFlow chunk 73), some intrusions (400 with its packet 2, extra data
110 and, for vulnerable targets, an impact alert 9), user activity (RUA 92–95, VPN 170/171),
discovery (RNA) events in bursts (a new host comes with its servers, client applications and
OS: records 10–15, 101; a known host changes: 16–53, 102, 103, 107, IOC 160), rare user-input
events (74–89), few files (500/502), correlation events (112) and malware (125). Rare kinds
are dealt from shuffled decks (`_draw`), so each comes in its proportion over every deck and
a history of a few thousand events holds every record type. Every id, UUID and name an event
refers to was sent in a metadata record before it, as on a real FMC (fact sheet §5, CAP).
Only the legacy records 104/105 are never generated (`estreamer.coverage`).

Values are produced by *field name*, walking the layout tables in
`estreamer.protocol.tables`: a field the tables add or rename still gets a value (a coherent
one when its name is in `REFERENCES` or the event's own values, its type's zero otherwise),
so a table change can never make the history stop encoding. Event families whose tables are
missing are simply not generated.

An event is kept as one dict holding the values of *every* block version its family can be
rendered in (`BLOCK_VERSIONS`), so the session renders the same event as block 160 for a
v14 request and 174 for v17, and the two copies carry the same values where fields agree.

The history grows at run time: `advance(now)` appends live events (archive timestamp = now)
at `rate` per second. Appends are locked; readers index the lists, which only grow.

`archive_offset` plays the standby of an FMC high-availability pair: both FMCs of a pair hold
the same events, but each stamps its own archive timestamps, so two emulators with one seed
and offsets 0 and, say, 3 send the same records (same record data) whose headers say
different times. Only the wire form moves: `HistoryRecord.archive_timestamp` stays the
shared, unshifted time, and a request "since t" is answered in the shifted clock."""

from __future__ import annotations

import bisect
import random
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from estreamer.emulator.ledger import SentRecord
from estreamer.protocol.layout import (
    BLOB,
    BLOCKS,
    Block,
    Fixed,
    LengthOf,
    ListOf,
    Nested,
    TextFrom,
    When,
)
from estreamer.protocol.records import encode_record
from estreamer.protocol.tables import RECORDS

RENDER_CACHE_ENTRIES = 200_000
"""The most renders a history keeps (~175 MB with their ledger rows), so a long live run
cannot grow without bound; past it, records are encoded on every send. That holds the whole
of a ~130,000-event history (~1.45 records per event) in one block version."""

# -- what can be rendered in which version ----------------------------------------------------

# UNCERTAIN (fact sheet §4.2, §12): which block a real FMC sends for each requested version.
# CAP shows one point (connection v14 → block 160); the rest follows eNcore's release notes.
# Each row: (lowest requested version, block type), ascending. The highest version a client
# asks for picks the last row at or under it; a request below every row (or a flag-only
# request, which names no version) gets the first row. Rows whose block has no table in
# estreamer.protocol.tables are skipped, so the emulator never sends what it cannot encode.
BLOCK_VERSIONS: dict[str, tuple[int, tuple[tuple[int, int], ...]]] = {
    # family: (block series, ((version, block type), ...))
    "intrusion": (2, ((9, 60), (10, 81), (11, 85))),
    "connection": (1, ((14, 160), (15, 163), (16, 171), (17, 174))),
    "file": (2, ((6, 56), (7, 79))),
    "malware": (2, ((7, 62), (8, 80))),
}

EVENT_RECORDS: dict[str, tuple[int, ...]] = {
    "intrusion": (400,),
    "packet": (2,),
    "extra_data": (110,),
    "impact": (9,),
    "connection": (71,),
    "connection_chunk": (73,),
    "file": (500, 502),
    "malware": (125,),
    "discovery": (10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                  29, 31, 34, 35, 42, 44, 45, 46, 47, 48, 51, 52, 53, *range(74, 90), 101, 102,
                  103, 107, 160),
    "user": (92, 93, 94, 95, 170, 171),
    "correlation": (112,),
}
"""Record types of each event family. Packets, extra data and impact alerts ride along with
intrusion events, connection chunks with connections; discovery includes the user-input
events (74–89, RNA event type 1002), which an FMC streams to the same discovery request."""

RIDES_WITH: dict[str, str] = {"connection_chunk": "connection"}
"""A family sent whenever its carrier is requested: no flag or event code of its own."""


def available_blocks(family: str) -> tuple[tuple[int, int], ...]:
    """The (version, block type) rows of a family whose block has a table."""
    series, rows = BLOCK_VERSIONS[family]
    return tuple((v, b) for v, b in rows if (series, b) in BLOCKS)


def block_for(family: str, version: int | None) -> int | None:
    """The block type to send for a requested version (None: no version named). None when
    the family has no block table at all, or is not versioned by block (discovery, user and
    correlation records carry the one block form their tables know)."""
    if family not in BLOCK_VERSIONS:
        return None
    rows = available_blocks(family)
    if not rows:
        return None
    chosen = rows[0][1]
    if version is not None:
        for row_version, block in rows:
            if row_version <= version:
                chosen = block
    return chosen


def family_available(family: str) -> bool:
    if family in BLOCK_VERSIONS and not available_blocks(family):
        return False
    return all(rtype in RECORDS for rtype in EVENT_RECORDS[family])


# -- references from events to metadata -------------------------------------------------------

REFERENCES: dict[str, tuple[int, str]] = {
    "device_id": (123, "id"),
    "ingress_zone_uuid": (115, "uuid"),
    "egress_zone_uuid": (115, "uuid"),
    "ingress_interface_uuid": (116, "uuid"),
    "egress_interface_uuid": (116, "uuid"),
    "access_control_policy_uuid": (145, "uuid"),
    "access_control_rule_id": (119, "rule_id"),
    "rule_action": (120, "id"),
    "access_control_rule_action": (120, "id"),
    "classification_id": (67, "id"),
    "priority_id": (4, "id"),
    "intrusion_policy_uuid": (118, "uuid"),
    "network_analysis_policy_uuid": (700, "uuid"),
    "user_id": (98, "id"),
    "application_id": (63, "id"),
    "application_protocol_id": (63, "id"),
    "client_application_id": (55, "id"),
    "web_application_id": (109, "id"),
    "url_category": (121, "id"),
    "url_reputation": (122, "id"),
    "file_type_id": (510, "id"),
    "event_type_id": (128, "id"),
    "event_subtype_id": (129, "id"),
    "detector_id": (130, "id"),
    "source_country": (520, "country_code"),
    "destination_country": (520, "country_code"),
    "initiator_country": (520, "country_code"),
    "responder_country": (520, "country_code"),
    "extra_data_type": (111, "extra_data_type"),
    "cloud_uuid": (127, "uuid"),
    "os_fingerprint_uuid": (54, "uuid"),
    "correlation_policy_id": (69, "id"),
    "correlation_rule_id": (70, "id"),
    "trigger_device_id": (123, "id"),
    "source_os_fingerprint_uuid": (54, "uuid"),
    "destination_os_fingerprint_uuid": (54, "uuid"),
    # discovery, user input and users
    "criticality_id": (58, "id"),
    "attribute_id": (60, "id"),
    "scan_type": (61, "id"),
    "system_user_id": (62, "id"),
    "vulnerability_id": (57, "id"),
    "network_protocol": (59, "id"),
    "realm_id": (300, "id"),
    "endpoint_profile_id": (301, "id"),
    "security_group_id": (302, "id"),
    "client_country": (520, "country_code"),
    "ioc_id": (161, "id"),
    # files
    "file_sha256": (511, "file_sha256"),
    "file_storage_status": (515, "id"),
    "file_analysis_status": (516, "id"),
    "spero_disposition": (517, "id"),
    "archive_file_status": (518, "id"),
    # flows: set by `_flow` for every family (0 where the flow has none), never auto-filled
    "rule_reason": (124, "id"),
    "security_context": (132, "security_context"),
    "ssl_policy_uuid": (600, "uuid"),
    "ssl_cipher_suite": (602, "id"),
    "ssl_version": (604, "id"),
    "ssl_server_certificate_status": (605, "id"),
    "ssl_actual_action": (606, "id"),
    "ssl_expected_action": (607, "id"),
    "ssl_flow_status": (608, "id"),
    "ssl_url_category": (613, "id"),
    "ssl_certificate_fingerprint": (614, "ssl_certificate_fingerprint"),
    "dns_record_type": (320, "id"),
    "dns_response_type": (321, "id"),
    "sinkhole_uuid": (322, "uuid"),
    "security_intelligence_source_destination": (281, "id"),
}
"""Event field name → (metadata record type, key field). Drives both generation (a value is
picked from what that metadata holds) and the coherence test. A value of 0 or the zero UUID
means "none" and needs no metadata; every other value must have been sent before."""

NO_REFERENCE = (0, "00000000-0000-0000-0000-000000000000", "0" * 32, "0" * 40, "0" * 64)
"""Values that mean "none": 0, the zero UUID, and all-zero hex (security context, certificate
fingerprint, SHA-256)."""


# -- the records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One record of the history. `fields` is shaped like `decode_record()` output; for
    block families it holds the values of every renderable block version."""

    index: int  # position in History.metadata or History.events
    record_type: int
    family: str  # metadata | intrusion | packet | extra_data | connection | file | malware
    fields: Mapping[str, Any]
    archive_timestamp: int | None = None  # None for metadata (fact sheet §3.1, §6.2)

    @property
    def is_event(self) -> bool:
        return self.archive_timestamp is not None


@dataclass
class _Pools:
    """Key values of the metadata sent, by (record type, key field)."""

    keys: dict[tuple[int, str], list[Any]] = field(default_factory=dict)
    _usable: dict[tuple[int, str], list[Any]] = field(default_factory=dict)

    def add(self, record_type: int, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            self.keys.setdefault((record_type, name), []).append(value)
            if value not in NO_REFERENCE:  # "none" is never picked as a reference
                self._usable.setdefault((record_type, name), []).append(value)

    def pick(self, rng: random.Random, record_type: int, key: str) -> Any | None:
        values = self._usable.get((record_type, key))
        return rng.choice(values) if values else None


# Names used for metadata (fixed lists, so a history reads like a small real network).
_DEVICES = ["ftd-hq-01", "ftd-branch-02", "ftd-dc-03"]
_ZONES = ["inside", "outside", "dmz", "guest"]
_INTERFACES = ["GigabitEthernet0/0", "GigabitEthernet0/1", "GigabitEthernet0/2",
               "GigabitEthernet0/3"]
_AC_RULES = ["Allow outbound web", "Block known bad", "Inspect DMZ", "Trust backups",
             "Default action"]
_RULE_ACTIONS = {1: "Allow", 2: "Block", 3: "Reset", 6: "Monitor", 8: "Trust"}
_PRIORITIES = {1: "high", 2: "medium", 3: "low"}
_CLASSIFICATIONS = [
    ("attempted-admin", "Attempted Administrator Privilege Gain"),
    ("trojan-activity", "A Network Trojan was Detected"),
    ("web-application-attack", "Web Application Attack"),
    ("policy-violation", "Potential Corporate Privacy Violation"),
    ("misc-activity", "Misc activity"),
]
_RULE_MESSAGES = [
    "SERVER-WEBAPP Apache Struts remote code execution attempt",
    "MALWARE-CNC Win.Trojan.Agent outbound connection",
    "BROWSER-IE Microsoft Internet Explorer use after free attempt",
    "POLICY-OTHER remote desktop protocol attempted administrator connection",
    "INDICATOR-SCAN SSH brute force login attempt",
    "SQL generic sql injection attempt",
    "FILE-PDF Adobe Reader malformed font heap overflow attempt",
    "PROTOCOL-DNS excessive queries of type ANY",
]
_SERVERS = {676: "HTTP", 1122: "HTTPS", 617: "DNS", 846: "SSH", 1100: "SMTP", 710: "LDAP",
            0: "Unknown"}
_CLIENTS = {573: "Firefox", 1296: "Chrome", 2000: "curl", 3412: "OpenSSH", 0: "Unknown"}
_WEB_APPS = {929: "Google", 629: "Facebook", 2307: "Microsoft Update", 0: "Unknown"}
_URL_CATEGORIES = {0: "Uncategorized", 1: "Business and Economy", 2: "Search Engines"}
_URL_REPUTATIONS = {0: "Risk unknown", 1: "High risk", 5: "Well known"}
_USERS = ["alice", "bob", "carol", "dave", "erin"]
_COUNTRIES = {840: "united states", 276: "germany", 826: "united kingdom", 392: "japan",
              156: "china"}
_FILE_TYPES = {1: "PDF", 4: "MSEXE", 13: "ZIP", 21: "MSOLE2", 286: "JAR"}
_MALWARE_TYPES = {1: "Threat Detected", 2: "Threat Quarantined", 3: "Cloud Recall"}
_MALWARE_SUBTYPES = {1: "File Executed", 2: "File Created", 3: "File Moved"}
_DETECTORS = {1: "ClamAV", 2: "SHA", 3: "SPERO", 4: "Tetra"}
_EXTRA_DATA_TYPES = {9: ("HTTP URI", "string"), 10: ("HTTP Hostname", "string")}
_FILE_NAMES = ["invoice.pdf", "setup.exe", "report.docx", "archive.zip", "update.jar"]
_FINGERPRINTS = [("Windows", "Microsoft", "11"), ("Linux", "Linux", "5.15"),
                 ("macOS", "Apple", "14"), ("iOS", "Apple", "17")]
_SERVICE_PORTS = {676: 80, 1122: 443, 617: 53, 846: 22, 1100: 25}
_SOURCE_TYPES = {0: "RNA", 1: "User", 2: "Scanner", 3: "Application"}
_NETWORK_PROTOCOLS = {2048: "IPv4", 2054: "ARP", 34525: "IPv6"}
_CORRELATION = [("Critical servers", "Watch the data centre", [
    ("Intrusion on a critical server", "a new intrusion event"),
    ("New OS on a server subnet", "a new host is discovered")])]
_HOSTNAMES = ["WS-ALICE", "WS-BOB", "LAPTOP-CAROL", "SRV-FILES", "PRINTER-2F"]
# Network-map and identity names (records 57, 58, 60–62, 91, 96, 106, 161, 300–302, 350).
_VULNERABILITIES = {
    90001: ("Apache Struts OGNL injection", "CVE-2017-5638"),
    90002: ("OpenSSH user enumeration", "CVE-2018-15473"),
    90003: ("Microsoft SMBv1 remote code execution", "CVE-2017-0144"),
}
_CRITICALITIES = {0: "None", 1: "Low", 2: "Medium", 3: "High"}
_ATTRIBUTES = {1: "Business Unit", 2: "Owner", 3: "Location"}
_SCAN_TYPES = {1: "Nmap", 2: "Nessus", 3: "Qualys"}
_SYSTEM_USERS = {1: "admin", 2: "soc-analyst"}
_SOURCE_APPLICATIONS = {1: "Nmap", 2: "Host Input API", 3: "Qualys"}
_SOURCE_DETECTORS = {0: "Cisco", 1: "User", 2: "Third Party"}
_IOCS = {1: ("Malware Detected", "Malware Executed"),
         2: ("CnC Connected", "Intrusion Event - malware-cnc"),
         3: ("Exploit Kit", "Impact 1 Intrusion Event - exploit-kit")}
_REALMS = {1: "EXAMPLE"}
_ENDPOINT_PROFILES = {1: ("windows-workstation", "Microsoft-Workstation"),
                      2: ("apple-iphone", "Apple-iPhone")}
_SECURITY_GROUPS = {4: "Employees", 5: "Contractors"}
_NETMAP_DOMAINS = {0: "Global"}
# Flow details (records 124, 132, 280–282, 320–322, 515–519, 530, 600–614).
_RULE_REASONS = {1: "IP Block", 2: "URL Block", 4: "DNS Block"}
_SI_CATEGORIES = {1: "Malware", 2: "CnC", 3: "Phishing"}
_SI_SIDES = {1: "Source", 2: "Destination"}
_DNS_RECORD_TYPES = {1: ("A", "a host address"), 5: ("CNAME", "the canonical name for an alias"),
                     28: ("AAAA", "IPv6 host address")}
_DNS_RESPONSE_TYPES = {0: ("NOERROR", "No Error"), 3: ("NXDOMAIN", "Non-Existent Domain")}
_FILE_STORAGE = {1: "File Stored", 3: "Unable to Store File", 6: "File Size is Too Large"}
_FILE_SANDBOX = {1: "Sent for Analysis", 2: "Analysis Complete", 5: "Not Sent for Analysis"}
_SPERO = {1: "Malware", 2: "Clean", 3: "Unknown"}
_ARCHIVE_STATUS = {1: "Pending", 2: "Extracted", 3: "Failed to Inspect"}
_STATIC_ANALYSIS = {1: "Sent for Analysis", 2: "Analysis Complete"}
_SSL_CIPHERS = {4865: "TLS_AES_128_GCM_SHA256", 49199: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
# The connection block carries the version in one byte: record 604 numbers them, not TLS does.
_SSL_VERSIONS = {5: "TLSv1.2", 6: "TLSv1.3"}
_SSL_CERT_STATUS = {1: "Not Checked", 4: "Valid", 8: "Expired"}
_SSL_ACTIONS = {1: "Do Not Decrypt", 3: "Decrypt (Resign)", 5: "Block"}
_SSL_FLOW_STATUS = {1: "Success", 2: "Uncached Session"}
_SSL_URL_CATEGORIES = {1: "Business and Economy", 2: "Search Engines"}
_CERTIFICATES = [("www.example.com", "DigiCert TLS RSA SHA256 2020 CA1"),
                 ("login.example.net", "R3"), ("update.vendor.test", "Vendor Root CA")]
# ICMP types and codes by IP protocol (records 260/270): (protocol, type, code, type, code).
_ICMP = [(1, 8, 0, "Echo Request", "No Code"), (1, 0, 0, "Echo Reply", "No Code"),
         (1, 3, 3, "Destination Unreachable", "Port Unreachable"),
         (1, 11, 0, "Time Exceeded", "TTL expired in transit"),
         (58, 128, 0, "Echo Request", "No Code")]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class History:
    """Metadata plus events in archive-timestamp order, reproducible from `seed`.

    `size` is the number of logical events (an intrusion event and its packet and extra
    data count once). They end one second before `end_time` (default: now), so live events
    appended by `advance()` never go back in time."""

    def __init__(self, seed: int = 0, size: int = 500, *, end_time: int | None = None,
                 rate: float = 0.0, families: tuple[str, ...] | None = None,
                 unticked: tuple[str, ...] = (), archive_offset: int = 0):
        # `families`: the generators to draw from (default: all, `_WEIGHTS`); `unticked`:
        # families never generated, like event types an FMC's eStreamer Event Configuration
        # leaves unticked (a request for them gets none), riders such as impact included.
        self.seed = seed
        self.rate = rate
        self.archive_offset = archive_offset  # seconds added to every archive timestamp sent
        self.end_time = int(time.time()) if end_time is None else end_time

        def wanted(family: str) -> bool:
            return family not in unticked and family_available(family)

        self.families = tuple(
            f for f in (families or tuple(_WEIGHTS)) if wanted(_GENERATES.get(f, f))
        )
        self.with_packets = wanted("packet")
        self.with_extra_data = wanted("extra_data")
        self.with_impact = wanted("impact")
        self.with_chunks = wanted("connection_chunk")
        self.metadata: list[HistoryRecord] = []
        self.events: list[HistoryRecord] = []
        self.unfilled: set[str] = set()  # field names that got only a type default
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._pools = _Pools()
        self._event_ids: dict[int, int] = {}
        self._connections: list[dict[str, Any]] = []
        self._counter = 0
        self._rendered: dict[tuple[int, int | None, bool], tuple[bytes, SentRecord]] = {}
        self._decks: dict[str, list[Any]] = {}
        self._icmp_types: set[tuple[int, int]] = set()
        self._live_start: float | None = None
        self._live_made = 0
        self._build_metadata()
        self._build_events(size)

    # -- reading ------------------------------------------------------------------------------

    def first_event_at_or_after(self, timestamp: int) -> int:
        """Index of the first event whose archive timestamp (as sent, offset included) is
        ≥ `timestamp`."""
        return bisect.bisect_left(self.events, timestamp - self.archive_offset,
                                  key=_archive_time)

    def render(self, record: HistoryRecord, block_type: int | None = None,
               archive: bool = False) -> bytes:
        """The record's wire bytes (header + data): `block_type` for block families, the
        16-byte header with `archive` (events only; metadata never has one, §6.2)."""
        return self.rendered(record, block_type, archive)[0]

    def rendered(self, record: HistoryRecord, block_type: int | None = None,
                 archive: bool = False) -> tuple[bytes, SentRecord]:
        """(wire bytes as `render` gives them, what the ledger keeps of them). Both are made
        once per (record, block type, archive flag) and cached: encoding is by far the
        costliest step of sending, and every session and every reconnect resends the same
        bytes, so a warm emulator sends about as fast as its socket takes them."""
        key = (id(record), block_type, archive and record.is_event)
        found = self._rendered.get(key)
        if found is None:
            values = dict(record.fields)
            if block_type is not None:
                values["block_type"] = block_type
            timestamp = record.archive_timestamp if archive else None
            if timestamp is not None:
                timestamp += self.archive_offset
            raw = encode_record(record.record_type, values, timestamp)
            found = (raw, SentRecord.of(raw))
            if len(self._rendered) < RENDER_CACHE_ENTRIES:
                self._rendered[key] = found
        return found

    # -- live events --------------------------------------------------------------------------

    def advance(self, now: float) -> int:
        """Append the live events due by `now` (`rate` per second since the first call);
        return how many were added."""
        if self.rate <= 0 or not self.families:
            return 0
        with self._lock:
            if self._live_start is None:
                self._live_start = now
                return 0
            due = int((now - self._live_start) * self.rate) - self._live_made
            due = min(max(due, 0), 10_000)  # a stalled clock must not make a huge burst
            second = max(int(now), self.end_time)
            for _ in range(due):
                self._make_event(second)
            self._live_made += due
            return due

    # -- building -----------------------------------------------------------------------------

    def _add_metadata(self, record_type: int, values: dict[str, Any]) -> None:
        if record_type not in RECORDS:
            return  # "whatever tables exist": a metadata type without a table is not sent
        fields = _fill(RECORDS[record_type].layout, values, self._value, self.unfilled)
        self.metadata.append(HistoryRecord(len(self.metadata), record_type, "metadata", fields))
        self._pools.add(record_type, fields)

    def _build_metadata(self) -> None:
        rng = self._rng
        add = self._add_metadata
        for i, name in enumerate(_DEVICES, 1):
            add(123, {"id": i, "name": name})
        for name in _ZONES:
            add(115, {"uuid": _uuid(rng), "name": name})
        for name in _INTERFACES:
            add(116, {"uuid": _uuid(rng), "name": name})
        # The connection block's "policy revision" field is looked up both as the policy
        # (145) and as the revision the rules (119) belong to; one UUID keeps both true.
        policy = revision = _uuid(rng)
        add(117, {"uuid": policy, "name": "Corporate Access Policy"})
        for device in range(1, len(_DEVICES) + 1):
            add(145, {"uuid": policy, "device_id": device, "name": "Corporate Access Policy"})
        for i, name in enumerate(_AC_RULES):
            rule_id = 268434432 if name == "Default action" else 268435457 + i
            add(119, {"revision": revision, "rule_id": rule_id, "name": name})
        for rid, name in _RULE_ACTIONS.items():
            add(120, {"id": rid, "name": name})
        for rid, name in _URL_CATEGORIES.items():
            add(121, {"id": rid, "name": name})
        for rid, name in _URL_REPUTATIONS.items():
            add(122, {"id": rid, "name": name})
        for rid, name in _PRIORITIES.items():
            add(4, {"id": rid, "name": name})
        for i, (name, description) in enumerate(_CLASSIFICATIONS, 1):
            add(67, {"id": i, "name": name, "description": description, "uuid": _uuid(rng),
                     "revision_uuid": _uuid(rng)})
        for i, message in enumerate(_RULE_MESSAGES):
            sid = 30000 + 17 * i
            add(66, {"generator_id": 1, "rule_id": sid, "rule_revision": 1 + i % 4,
                     "signature_id": sid, "rule_uuid": _uuid(rng),
                     "rule_revision_uuid": _uuid(rng), "message": message})
        for table, record_type in ((_SERVERS, 63), (_CLIENTS, 55), (_WEB_APPS, 109)):
            for rid, name in table.items():
                add(record_type, {"id": rid, "name": name})
        for i, name in enumerate(_USERS, 1):
            add(98, {"id": 1000 + i, "protocol": 710, "name": name})
        for code, name in _COUNTRIES.items():
            add(520, {"country_code": code, "name": name})
        add(118, {"uuid": _uuid(rng), "name": "Balanced Security and Connectivity"})
        add(700, {"uuid": _uuid(rng), "name": "Balanced Security and Connectivity NAP"})
        # AMP for Endpoints names its file types in record 131, which malware events refer
        # to; the same ids as the network's 510 keep one `file_type_id` reference true.
        for table, record_type in ((_FILE_TYPES, 510), (_FILE_TYPES, 131), (_MALWARE_TYPES, 128),
                                   (_MALWARE_SUBTYPES, 129), (_DETECTORS, 130)):
            for rid, name in table.items():
                add(record_type, {"id": rid, "name": name})
        add(127, {"uuid": _uuid(rng), "name": "AMP Public Cloud"})
        # Discovery and correlation names (records 54, 90, 59, 69, 70).
        for name, vendor, version in _FINGERPRINTS:
            add(54, {"uuid": _uuid(rng), "name": name, "vendor": vendor, "version": version})
        for table, record_type in ((_SOURCE_TYPES, 90), (_NETWORK_PROTOCOLS, 59)):
            for rid, name in table.items():
                add(record_type, {"id": rid, "name": name})
        rule_id = 0
        for policy_id, (name, description, rules) in enumerate(_CORRELATION, 1):
            add(69, {"id": policy_id, "name": name, "description": description,
                     "uuid": _uuid(rng), "revision_uuid": _uuid(rng)})
            for rule_name, event_type in rules:
                rule_id += 1
                add(70, {"id": rule_id, "name": rule_name, "description": rule_name,
                         "rule_event_type": event_type, "uuid": _uuid(rng),
                         "revision_uuid": _uuid(rng)})
        if self.with_extra_data:
            for type_id, (name, encoding) in _EXTRA_DATA_TYPES.items():
                add(111, {"extra_data_type": type_id, "name": name, "encoding": encoding})
        self._build_more_metadata(policy)

    def _build_more_metadata(self, policy: str) -> None:
        """The rest of what an FMC names: network-map and identity metadata, the details
        flows carry (TLS, DNS, Security Intelligence, file analysis), ICMP names, rule
        documentation. Rows keyed by an id an event may carry are picked by `_flow` and the
        discovery, user and file generators, so each of them names something real."""
        rng = self._rng
        add = self._add_metadata
        for vid, (title, cve) in _VULNERABILITIES.items():
            add(57, {"id": vid, "impact": 3, "exploits": 1, "remote": 1,
                     "entry_date": "2023-01-10", "published_date": "2023-01-09",
                     "modified_date": "2024-02-01", "title": title,
                     "short_description": title, "description": f"{title} ({cve})",
                     "technical_description": f"See {cve}.",
                     "solution": "Apply the vendor's update."})
            add(106, {"id": vid, "scanner_type": 2, "title": title,
                      "description": f"{title} reported by the scanner", "cve_id": cve,
                      "bugtraq_id": ""})
        for table, record_type in ((_CRITICALITIES, 58), (_ATTRIBUTES, 60), (_SCAN_TYPES, 61),
                                   (_SOURCE_APPLICATIONS, 91), (_SOURCE_DETECTORS, 96),
                                   (_REALMS, 300), (_SECURITY_GROUPS, 302),
                                   (_NETMAP_DOMAINS, 350), (_FILE_STORAGE, 515),
                                   (_FILE_SANDBOX, 516), (_SPERO, 517), (_ARCHIVE_STATUS, 518),
                                   (_STATIC_ANALYSIS, 519), (_SSL_CIPHERS, 602),
                                   (_SSL_VERSIONS, 604), (_SSL_CERT_STATUS, 605),
                                   (_SSL_ACTIONS, 606), (_SSL_ACTIONS, 607),
                                   (_SSL_FLOW_STATUS, 608), (_SSL_URL_CATEGORIES, 613),
                                   (_SI_SIDES, 281)):
            for rid, name in table.items():
                add(record_type, {"id": rid, "name": name})
        for uid, name in _SYSTEM_USERS.items():
            add(62, {"id": uid, "protocol": 0, "name": name})
        for rid, description in _RULE_REASONS.items():
            add(124, {"id": rid, "description": description})
        for iid, (category, event_type) in _IOCS.items():
            add(161, {"id": iid, "category": category, "ioc_event_type": event_type})
        for pid, (profile, full) in _ENDPOINT_PROFILES.items():
            add(301, {"id": pid, "profile_name": profile, "full_name": full})
        add(132, {"security_context": rng.getrandbits(128).to_bytes(16, "big").hex(),
                  "name": "ctx-finance"})
        for device in range(1, len(_DEVICES) + 1):
            add(146, {"uuid": _uuid(rng), "device_id": device,
                      "name": "Default Prefilter Policy"})
            add(147, {"uuid": _uuid(rng), "device_id": device, "name": "Fastpath backups"})
        # Security Intelligence categories are named per access-control policy (280) and by
        # UUID (282); the sinkhole a DNS policy answers with (322).
        for cid, name in _SI_CATEGORIES.items():
            add(280, {"id": cid, "access_control_policy_uuid": policy, "name": name})
            add(282, {"uuid": _uuid(rng), "name": name})
        add(322, {"uuid": _uuid(rng), "name": "Umbrella sinkhole"})
        for table, record_type in ((_DNS_RECORD_TYPES, 320), (_DNS_RESPONSE_TYPES, 321)):
            for rid, (name, description) in table.items():
                add(record_type, {"id": rid, "name": name, "description": description})
        for protocol, icmp_type, code, type_name, code_name in _ICMP:
            if (protocol, icmp_type) not in self._icmp_types:
                self._icmp_types.add((protocol, icmp_type))
                add(260, {"icmp_type": icmp_type, "protocol": protocol,
                          "description": type_name})
            add(270, {"icmp_code": code, "icmp_type": icmp_type, "protocol": protocol,
                      "description": code_name})
        add(530, {"uuid": _uuid(rng), "name": "Block Malware"})
        # One SSL policy; its rules are keyed by the policy UUID as events carry it (601).
        ssl_policy = _uuid(rng)
        add(600, {"uuid": ssl_policy, "name": "Corporate Decryption Policy"})
        for rule_id, name in ((1, "Decrypt outbound web"), (2, "Do not decrypt banking")):
            add(601, {"revision": ssl_policy, "rule_id": rule_id, "name": name})
        for subject, issuer in _CERTIFICATES:
            add(614, {"ssl_certificate_fingerprint": rng.getrandbits(160).to_bytes(20,
                                                                                    "big").hex(),
                      "public_key_sha1": rng.getrandbits(160).to_bytes(20, "big").hex(),
                      "serial_number": rng.getrandbits(128).to_bytes(20, "big").hex(),
                      "serial_number_length": 16, "subject_common_name": subject,
                      "subject_organization": "Example Inc.", "subject_country": "US",
                      "issuer_common_name": issuer, "issuer_organization": issuer,
                      "issuer_country": "US", "valid_start_time": self.end_time - 86400 * 90,
                      "valid_end_time": self.end_time + 86400 * 275})
        # Files the sensors keep seeing (511): file events pick their SHA-256 from these.
        for i, name in enumerate(_FILE_NAMES * 2):
            malware = i % 3 == 1
            add(511, {"file_sha256": rng.getrandbits(256).to_bytes(32, "big").hex(),
                      "file_name": name, "disposition": 3 if malware else 1,
                      "user_defined": 0})
        # Rule documentation (140) for the intrusion rules the messages (66) name.
        rules = zip(self._pools.keys.get((66, "generator_id"), []),
                    self._pools.keys.get((66, "rule_id"), []),
                    self._pools.keys.get((66, "rule_revision"), []),
                    _RULE_MESSAGES, strict=False)
        for generator, sid, revision, message in rules:
            add(140, {"signature_id": sid, "generator_id": generator,
                      "rule_revision": revision, "summary": message,
                      "documented_impact": "Possible compromise of the target host",
                      "detail": message, "affected_systems": "Any",
                      "attack_scenarios": "Remote", "ease_of_attack": "Simple",
                      "false_positives": "None known", "false_negatives": "None known",
                      "corrective_action": "Apply vendor patches",
                      "contributors": "Cisco Talos", "additional_references": ""})

    def _build_events(self, size: int) -> None:
        # Spread `size` events over seconds, 1–4 per second with small gaps, ending just
        # before end_time; several events share a second on purpose (§3.1: a restart from
        # a timestamp resends that whole second, so clients must de-duplicate).
        rng = self._rng
        seconds: list[int] = []
        offset = 0
        while len(seconds) < size:
            offset += rng.choice((1, 1, 1, 2, 3, 7))
            seconds.extend([offset] * min(rng.randint(1, 4), size - len(seconds)))
        shift = self.end_time - 1 - (seconds[-1] if seconds else 0)
        for second in seconds:
            self._make_event(second + shift)

    def _make_event(self, archive: int) -> None:
        if not self.families:
            return
        family = self._draw("family", {f: _WEIGHTS[f] for f in self.families})
        for record_type, family_name, values in getattr(self, f"_{family}")(archive):
            self._append_event(record_type, family_name, values, archive)

    def _draw(self, deck: str, weights: Mapping[Any, int]) -> Any:
        """One pick in proportion to `weights`, dealt from a shuffled deck holding each choice
        `weight` times: exact proportions over every deck, so a rare kind (weight 1) comes
        once per deck rather than perhaps never in a short history."""
        cards = self._decks.get(deck)
        if not cards:
            cards = self._decks[deck] = [k for k, w in weights.items() for _ in range(w)]
            self._rng.shuffle(cards)
        return cards.pop()

    def _append_event(self, record_type: int, family: str, values: dict[str, Any],
                      archive: int) -> None:
        layout = RECORDS[record_type].layout
        fields = _fill(layout, values, self._value, self.unfilled, _blocks_of(family))
        self.events.append(HistoryRecord(len(self.events), record_type, family, fields, archive))

    # -- value sources ------------------------------------------------------------------------

    def _value(self, name: str, kind: Any) -> tuple[bool, Any]:
        """(found, value) for a field not set by the event itself: a metadata key for a
        referencing name, else not found (the caller uses the type's zero)."""
        ref = REFERENCES.get(name)
        if ref is not None:
            value = self._pools.pick(self._rng, *ref)
            if value is not None:
                return True, value
        return False, None

    def _ip(self, internal: bool) -> str:
        rng = self._rng
        if internal:
            return f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        return f"{rng.choice((93, 104, 142, 151, 185))}.{rng.randint(0, 255)}." \
               f"{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def _flow(self, archive: int, icmp: bool = False) -> dict[str, Any]:
        """Values shared by every event family: endpoints, ports, times, device, the
        connection the event belongs to (intrusion and file events point at a recent one) and
        what the sensor learnt about the flow (TLS, DNS, Security Intelligence). `icmp`
        allows a ping or an unreachable now and then (connections, intrusions)."""
        rng = self._rng
        outbound = rng.random() < 0.7
        inside, outside = self._ip(True), self._ip(False)
        src, dst = (inside, outside) if outbound else (outside, inside)
        service, port, proto = rng.choice(((676, 80, 6), (1122, 443, 6), (617, 53, 17),
                                           (846, 22, 6), (1100, 25, 6)))
        pick = self._pools.pick
        country = pick(rng, 520, "country_code") or 0
        device = pick(rng, 123, "id") or 1
        self._counter = (self._counter + 1) & 0xFFFF
        event_second = archive - rng.randint(0, 30)
        first = event_second - rng.randint(0, 120)
        connection = {"device_id": device, "connection_timestamp": first,
                      "connection_instance_id": 1 + device % 4,
                      "connection_counter": self._counter}
        if self._connections and rng.random() < 0.5:
            connection = dict(rng.choice(self._connections))
            device = connection["device_id"]
        values: dict[str, Any] = {
            **connection,
            "device_id": device,
            "event_second": event_second,
            "event_microsecond": rng.randint(0, 999_999),
            "source_ip": src, "destination_ip": dst,
            "initiator_ip": src, "responder_ip": dst,
            "source_port": rng.randint(1024, 65535) if outbound else port,
            "destination_port": port if outbound else rng.randint(1024, 65535),
            "protocol": proto,
            "application_id": service, "application_protocol_id": service,
            "source_country": 0 if outbound else country,
            "destination_country": country if outbound else 0,
        }
        if icmp and rng.random() < 0.04:
            # ICMP carries its type and code in the port fields (fact sheet §10.6, §10.7).
            protocol, icmp_type, code, _, _ = rng.choice(_ICMP[:4])
            values.update(protocol=protocol, source_port=icmp_type, destination_port=code,
                          application_id=0, application_protocol_id=0)
        values["initiator_port"] = values["source_port"]
        values["responder_port"] = values["destination_port"]
        values["initiator_country"] = values["source_country"]
        values["responder_country"] = values["destination_country"]
        values.update(self._flow_details(values["application_id"]))
        return values

    def _flow_details(self, service: int) -> dict[str, Any]:
        """TLS details for HTTPS, DNS details for DNS, a Security Intelligence verdict and a
        security context now and then; "none" everywhere else, so no field is auto-filled
        with a name that flow never had."""
        rng, pick = self._rng, self._pools.pick
        zero_uuid = NO_REFERENCE[1]
        policy = pick(rng, 145, "uuid") or zero_uuid
        details: dict[str, Any] = {
            "access_control_policy_uuid": policy, "rule_reason": 0,
            "security_context": "0" * 32, "ssl_policy_uuid": zero_uuid, "ssl_rule_id": 0,
            "ssl_cipher_suite": 0, "ssl_version": 0, "ssl_server_certificate_status": 0,
            "ssl_actual_action": 0, "ssl_expected_action": 0, "ssl_flow_status": 0,
            "ssl_url_category": 0, "ssl_certificate_fingerprint": "0" * 40,
            "dns_record_type": 0, "dns_response_type": 0, "sinkhole_uuid": zero_uuid,
            "security_intelligence_source_destination": 0, "security_intelligence_list_1": 0,
            "security_intelligence_list_2": 0,
        }
        if service == 1122:
            action = pick(rng, 606, "id") or 0
            details.update(
                ssl_policy_uuid=pick(rng, 600, "uuid") or zero_uuid,
                ssl_rule_id=pick(rng, 601, "rule_id") or 0,
                ssl_cipher_suite=pick(rng, 602, "id") or 0,
                ssl_version=pick(rng, 604, "id") or 0,
                ssl_server_certificate_status=pick(rng, 605, "id") or 0,
                ssl_actual_action=action, ssl_expected_action=action,
                ssl_flow_status=pick(rng, 608, "id") or 0,
                ssl_url_category=pick(rng, 613, "id") or 0,
                ssl_certificate_fingerprint=pick(rng, 614, "ssl_certificate_fingerprint")
                or "0" * 40,
                ssl_server_name="www.example.com")
        elif service == 617:
            details.update(dns_record_type=pick(rng, 320, "id") or 0,
                           dns_response_type=pick(rng, 321, "id") or 0,
                           dns_query="www.example.com", dns_ttl=300)
        if rng.random() < 0.03:  # a Security Intelligence hit on a listed address
            category = pick(rng, 280, "id") or 0
            details.update(security_intelligence_list_1=category,
                           security_intelligence_source_destination=pick(rng, 281, "id") or 0,
                           security_intelligence_layer=1,
                           rule_reason=pick(rng, 124, "id") or 0)
            if service == 617:
                details["sinkhole_uuid"] = pick(rng, 322, "uuid") or zero_uuid
        if rng.random() < 0.05:  # a multi-context device's traffic
            details["security_context"] = pick(rng, 132, "security_context") or "0" * 32
        return details

    def _intrusion(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        rng = self._rng
        values = self._flow(archive, icmp=True)
        rule = rng.randrange(len(self._pools.keys.get((66, "rule_id"), [0])))
        device = values["device_id"]
        self._event_ids[device] = event_id = self._event_ids.get(device, 0) + 1
        values.update(
            event_id=event_id,
            generator_id=self._pools.keys.get((66, "generator_id"), [1])[rule],
            rule_id=self._pools.keys.get((66, "rule_id"), [1])[rule],
            rule_revision=self._pools.keys.get((66, "rule_revision"), [1])[rule],
            impact_flags=rng.choice((0x01, 0x03, 0x07, 0x08, 0x20)),
            impact=rng.randint(0, 4),
            blocked=rng.choice((0, 0, 1, 2)),
            vlan_id=rng.choice((0, 0, 10, 20)),
            snort_version=3,
        )
        yield 400, "intrusion", values
        if self.with_packets:
            packet = _packet(rng, values)
            yield 2, "packet", {
                "device_id": device, "event_id": event_id,
                "event_second": values["event_second"],
                "packet_second": values["event_second"],
                "packet_microsecond": values["event_microsecond"],
                "link_type": 1, "packet_data": packet.hex(),
            }
        if self.with_extra_data:
            type_id = rng.choice(list(_EXTRA_DATA_TYPES))
            text = "/index.php?id=1%27%20OR%201=1" if type_id == 9 else "www.example.com"
            yield 110, "extra_data", {
                "device_id": device, "event_id": event_id,
                "event_second": values["event_second"], "extra_data_type": type_id,
                "data": text.encode().hex(),
            }
        if self.with_impact and values["impact"] in (1, 2) and rng.random() < 0.5:
            # After the event, its packet and extra data: an impact alert when the network
            # map says the target is (maybe) vulnerable; same event, device, second (§10.10).
            message = _RULE_MESSAGES[rule % len(_RULE_MESSAGES)]
            yield 9, "impact", {
                "event_id": event_id, "device_id": device,
                "event_second": values["event_second"], "impact": values["impact"],
                "source_ip": values["source_ip"], "destination_ip": values["destination_ip"],
                "description": f"[Impact: {values['impact']}] {message}",
            }

    def _connection(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        rng = self._rng
        values = self._flow(archive, icmp=True)
        self._connections.append({k: values[k] for k in (
            "device_id", "connection_timestamp", "connection_instance_id",
            "connection_counter")})
        del self._connections[:-50]
        packets_out, packets_in = rng.randint(1, 200), rng.randint(0, 400)
        last = values["event_second"]
        values.update(
            first_packet_time=values["connection_timestamp"],
            last_packet_time=last,
            initiator_packets=packets_out,
            responder_packets=packets_in,
            initiator_bytes=packets_out * rng.randint(60, 1500),
            responder_bytes=packets_in * rng.randint(60, 1500),
            file_event_count=0,
            intrusion_event_count=0,
            tcp_flags=0x1B if values["protocol"] == 6 else 0,
            client_url=f"https://www.example.com/{rng.randint(1, 999)}"
            if values["application_id"] in (676, 1122) else "",
        )
        # The discovery header as CAP shows it for flow records (fact sheet §8).
        header = {"device_id": values["device_id"], "has_ipv6": 1, "event_type": 1003,
                  "event_subtype": 1, "ipv6_address": "::"}
        yield 71, "connection", {**values, "discovery_header": header}
        if self.with_chunks and rng.random() < 0.02:
            # Now and then a NetFlow exporter's summary of the same pair (record 73, event
            # type 1003 subtype 2): IPv4 only, counts summed over many flows.
            flows = rng.randint(2, 40)
            yield 73, "connection_chunk", {
                **values, "start_time": values["connection_timestamp"],
                "connection_type": 1, "netflow_detector_ip": "10.0.0.2",
                "packets_sent": packets_out * flows, "packets_received": packets_in * flows,
                "bytes_sent": values["initiator_bytes"] * flows,
                "bytes_received": values["responder_bytes"] * flows, "connections": flows,
                "discovery_header": {**header, "event_subtype": 2},
            }

    def _file(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        rng = self._rng
        values = self._flow(archive)
        # The sensors keep seeing the same files: each event is one of the files record 511
        # names, with that record's name and disposition (3 = malware).
        known = self._pools.keys.get((511, "file_sha256"), [])
        if known:
            i = rng.randrange(len(known))
            sha = known[i]
            name = self._pools.keys[(511, "file_name")][i]
            malware = self._pools.keys[(511, "disposition")][i] == 3
        else:
            sha = rng.getrandbits(256).to_bytes(32, "big").hex()
            name, malware = rng.choice(_FILE_NAMES), rng.random() < 0.3
        values.update(
            file_event_timestamp=values["event_second"],
            disposition=3 if malware else rng.choice((1, 2)),
            action=4 if malware else rng.choice((1, 3)),
            file_sha256=sha,
            file_name=name,
            file_size=rng.randint(1_000, 50_000_000),
            direction=rng.choice((1, 2)),
            uri=f"/downloads/{rng.randint(1, 999)}",
            threat_score=rng.randint(0, 100) if malware else 0,
        )
        yield (502 if malware else 500), "file", values

    def _malware(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        rng = self._rng
        values = self._flow(archive)
        user = self._pools.pick(rng, 98, "id")
        names = self._pools.keys.get((98, "id"), [])
        username = _USERS[names.index(user)] if user in names else ""
        values.update(
            agent_uuid=_uuid(rng),
            malware_event_timestamp=values["event_second"],
            detection_name="W32.Generic:Gen.22fz.1201",
            user=username, user_id=user or 0,
            file_name=rng.choice(_FILE_NAMES),
            file_path="C:\\Users\\Public\\Downloads",
            file_sha=rng.getrandbits(256).to_bytes(32, "big").hex(),
            file_size=rng.randint(1_000, 5_000_000),
            file_timestamp=values["event_second"] - 60,
            event_description="Threat detected by AMP for Endpoints",
            disposition=3, direction=1,
        )
        yield 125, "malware", values


    # -- discovery, users, correlation -------------------------------------------------------

    def _discovery_header(self, values: Mapping[str, Any], event_type: int, subtype: int,
                          host: str, mac: str) -> dict[str, Any]:
        """§8 as a 6.x+ FMC fills it for host events: the host's address in the IPv6 field
        (mapped IPv4), the legacy field empty."""
        return {"device_id": values["device_id"], "mac_address": mac, "has_ipv6": 1,
                "event_second": values["event_second"],
                "event_microsecond": values["event_microsecond"], "event_type": event_type,
                "event_subtype": subtype, "ipv6_address": host}

    def _discovery(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """A burst: a new host with its server, client application and OS (records 10, 11 or
        12, 13, 14, 15, 101), or one change on a known host (`_HOST_CHANGES`)."""
        rng = self._rng
        values = self._flow(archive)
        host = values["source_ip"] if values["source_ip"].startswith("10.") \
            else values["destination_ip"]
        mac = "00:50:56:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        fingerprint = self._pools.pick(rng, 54, "uuid")
        # The host's server is the flow's service, on its well-known port.
        service = values["application_id"]
        port = _SERVICE_PORTS.get(service, values["destination_port"])
        server = {"block_type": 103, "port": port, "hits": rng.randint(1, 50),
                  "last_used": values["event_second"], "confidence": rng.choice((50, 90, 100)),
                  "server_information": [{
                      "block_type": 117, "application_id": service, "vendor": "",
                      "version": "", "last_used": values["event_second"]}],
                  "web_applications": []}
        client_id = rng.choice([c for c in _CLIENTS if c])
        client = {"hits": rng.randint(1, 20), "last_used": values["event_second"],
                  "client_application_id": client_id, "application_protocol_id": service,
                  "version": rng.choice(("118.0", "120.1", "8.4")), "web_applications": []}
        os_print = {"block_type": 130, "os_fingerprint_uuid": fingerprint,
                    "fingerprint_type": 1, "last_seen": values["event_second"],
                    "ttl_difference": 0, "mobile_devices": []}

        def event(record_type: int, event_type: int, subtype: int, **fields: Any):
            header = self._discovery_header(values, event_type, subtype, host, mac)
            return record_type, "discovery", {**values, **fields, "discovery_header": header}

        tcp = values["protocol"] == 6
        if self._draw("host", {"new": 2, "change": 3}) == "new":
            yield event(10, 1000, 1, ip_address=host, hops=rng.choice((0, 0, 1)),
                        server_fingerprints=[os_print],
                        tcp_servers=[server] if tcp else [],
                        udp_servers=[] if tcp else [server],
                        network_protocols=[{"block_type": 4, "protocol_number": 2048}],
                        transport_protocols=[{"block_type": 4, "protocol_number": p}
                                             for p in (6, 17)],
                        mac_addresses=[{"block_type": 95, "ttl": 64, "mac": mac, "primary": 1,
                                        "last_seen": values["event_second"]}],
                        last_seen=values["event_second"],
                        client_applications=[{"block_type": 112, **client,
                                              "vulnerabilities": []}],
                        netbios_name=rng.choice(_HOSTNAMES))
            yield event(11 if tcp else 12, 1000, 2 if tcp else 6, **server)
            if rng.random() < 0.3:
                yield event(13, 1000, 3, network_protocol=2048)
                yield event(14, 1000, 4, transport_protocol=values["protocol"])
            yield event(15, 1000, 7, **client)
            yield event(101, 1000, 8, **os_print)
            return
        kind = self._draw("host change", {k: w for k, (w, _, _) in _HOST_CHANGES.items()})
        _, event_type, subtype = _HOST_CHANGES[kind]
        fields: dict[str, Any] = {}
        if kind in (16, 17, 51, 52):
            fields = server
        elif kind in (18, 53):
            fields = {"confidence": rng.choice((70, 90)), "os_fingerprint_uuid": fingerprint}
        elif kind in (35, 107):
            fields = client
        elif kind == 22:
            fields = {"hops": rng.randint(1, 3)}
        elif kind in (23, 24, 25, 26):
            fields = {"port": port}
        elif kind in (27, 28):
            fields = {"ttl": 64, "mac": mac, "primary": int(kind == 27),
                      "last_seen": values["event_second"]}
        elif kind == 29:
            fields = {"new_ip": self._ip(True)}
        elif kind == 31:
            fields = {"host_type": rng.choice((1, 2))}  # router, bridge
        elif kind == 34:
            fields = {"vlan_id": rng.choice((10, 20, 30)), "vlan_type": 0, "vlan_priority": 0}
        elif kind == 42:
            fields = {"value": rng.choice(_HOSTNAMES)}
        elif kind == 45:
            banner = b"SSH-2.0-OpenSSH_8.9p1\r\n" if port == 22 else b"220 mail ESMTP ready\r\n"
            fields = {"port": port, "protocol": values["protocol"], "banner": banner.hex()}
        elif kind in (46, 47, 48):
            attribute = self._pools.pick(rng, 60, "id") or 0
            fields = {"source_id": self._pools.pick(rng, 62, "id") or 0,
                      "attribute_uuid": _uuid(rng), "attribute_id": attribute,
                      "attribute_name": _ATTRIBUTES.get(attribute, ""), "attribute_type": 1,
                      "list_items": [{"id": 1, "name": "Finance"}, {"id": 2, "name": "Sales"}],
                      "addresses": [{"block_type": 146, "attribute_id": attribute,
                                     "ip_address": "10.1.0.0", "prefix_bits": 16}]}
        elif kind in (102, 103):
            fields = {"source_type": 0, "source_id": 0, "identity_uuid": fingerprint,
                      "port": port, "protocol": values["protocol"], "server_map_id": 0}
        yield event(kind, event_type, subtype, **fields)

    def _user_input(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """A change an analyst made to the network map (records 74–88, RNA event type 1002),
        or a scan result imported (89). Rare: a few per day on a real FMC."""
        rng, pick = self._rng, self._pools.pick
        values = self._flow(archive)
        host = values["source_ip"] if values["source_ip"].startswith("10.") \
            else values["destination_ip"]
        kind = self._draw("user input", {k: w for k, (w, _) in _USER_INPUT.items()})
        service = values["application_id"]
        port = _SERVICE_PORTS.get(service, 80)
        ranges = [{"start_ip": host, "end_ip": host}]
        # Made by an FMC user (source type 1, id of a system user), or a scanner (type 2).
        who = {"source_type": 1, "source_id": pick(rng, 62, "id") or 0, "ip_ranges": ranges}
        product = {**who, "port": 0, "protocol": 0, "drop_user_product": 0,
                   "software_id": 0, "application_id": 0, "vendor_id": 0, "product_id": 0,
                   "os_fingerprint_uuid": NO_REFERENCE[1], "mobile": 0, "jailbroken": 0,
                   "fixes": []}
        server_product = {**product, "port": port, "protocol": 6, "application_id": service,
                          "custom_vendor": "Apache", "custom_product": "httpd",
                          "custom_version": "2.4.58", "version_major": "2",
                          "version_minor": "4", "version_revision": "58"}
        vulnerability = pick(rng, 57, "id") or 0
        title = _VULNERABILITIES.get(vulnerability, ("", ""))[0]
        fields: dict[str, Any]
        if kind == 74:
            fields = {**product, "custom_vendor": "Microsoft", "custom_product": "Windows",
                      "custom_version": "11", "version_major": "11",
                      "os_fingerprint_uuid": pick(rng, 54, "uuid") or NO_REFERENCE[1],
                      "fixes": [{"fix_id": 5034441}]}
        elif kind in (75, 86):
            fields = server_product
        elif kind in (76, 88):
            fields = {**who, "protocols": [{"ip_ranges": ranges, "mac_addresses": [],
                                            "protocol_type": 1, "protocol_number": 17}]}
        elif kind in (77, 87):
            fields = {**who, "client_applications": [{
                "ip_ranges": ranges, "application_protocol_id": service,
                "client_application_id": rng.choice([c for c in _CLIENTS if c]),
                "version": "120.1", "payload_type": 0, "web_application_id": 0}]}
        elif kind in (78, 85):
            fields = {**who, "mac_addresses": [{"mac": "00:50:56:8a:1b:2c"}]}
        elif kind == 79:
            fields = {**who, "servers": [{"ip_ranges": ranges, "port": port, "protocol": 6}]}
        elif kind in (80, 81):
            fields = {**who, "vulnerability_type": 0, "vulnerabilities": [{
                "ip_ranges": ranges, "port": port, "protocol": 6,
                "vulnerability_id": vulnerability,
                "third_party_vulnerability_uuid": NO_REFERENCE[1], "description": title,
                "client_application_id": 0, "application_protocol_id": service,
                "version": ""}]}
        elif kind == 82:
            fields = {**who, "criticality_id": rng.choice((1, 2, 3))}
        elif kind in (83, 84):
            fields = {**who, "attribute_id": pick(rng, 60, "id") or 0,
                      "attribute_value": b"Finance".hex()}
        else:  # 89: a scan result a user imported
            cve = _VULNERABILITIES.get(vulnerability, ("", "CVE-2017-5638"))[1]
            fields = {
                "system_user_id": pick(rng, 62, "id") or 0,
                "scan_type": pick(rng, 61, "id") or 0, "ip_address": host, "port": port,
                "protocol": 6, "flag": 0,
                "vulnerabilities": [{
                    "port": port, "protocol": 6, "scanner_vulnerability_id": "NESSUS-97833",
                    "name": title, "description": title, "name_clean": title,
                    "description_clean": title, "bugtraq_ids": [{"bugtraq_id": 96729}],
                    "cve_ids": [{"cve_id": cve}]}],
                "generic_scan_results": [{
                    "port": port, "protocol": 6, "sub_server": "http", "value": "Apache",
                    "sub_server_unformatted": "http", "value_unformatted": "Apache"}],
                "user_products": [{**server_product, "source_type": 2,
                                   "source_id": pick(rng, 91, "id") or 0}],
            }
        _, subtype = _USER_INPUT[kind]
        header = self._discovery_header(values, 1002, subtype, host, "00:00:00:00:00:00")
        yield kind, "discovery", {**values, **fields, "discovery_header": header}

    def _user(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """A user seen logging in (95), now and then for the first time (94, then 95), a VPN
        session (170 then 171), or a user dropped (92) or removed (93) from the FMC's list."""
        rng = self._rng
        values = self._flow(archive)
        user = self._pools.pick(rng, 98, "id") or 0
        names = self._pools.keys.get((98, "id"), [])
        username = _USERS[names.index(user)] if user in names else ""
        host = values["source_ip"] if values["source_ip"].startswith("10.") \
            else values["destination_ip"]
        header = {"device_id": values["device_id"], "has_ipv6": 1, "event_type": 1004,
                  "event_second": values["event_second"], "ipv6_address": host}
        who = {**values, "user_id": user, "username": username,
               "application_protocol_id": 710, "email": f"{username}@example.com",
               "domain": "EXAMPLE", "timestamp": values["event_second"], "user_ip": host,
               "login_type": 0, "auth_type": 1, "reported_by": "ISE", "vpn_sessions": [],
               "first_name": username.title(), "last_name": "Example",
               "department": "Engineering", "phone": "+1 555 0100"}
        kind = self._draw("user", {95: 12, 94: 3, 170: 2, 92: 1, 93: 1})
        if kind in (92, 93):  # RUA subtypes 4 (dropped: user limit) and 3 (removed)
            yield kind, "user", {**who, "discovery_header": {
                **header, "event_subtype": 4 if kind == 92 else 3}}
            return
        if kind == 170:
            # UNCERTAIN: no source gives the header's subtype for VPN records; the RUA login
            # subtype (2) is used for both. The session is the remote address's, the client's
            # country named by record 520.
            outside = values["destination_ip"] if host == values["source_ip"] \
                else values["source_ip"]
            session = {"index": 1, "vpn_type": 1, "group_policy": "DfltGrpPolicy",
                       "vpn_connection_profile": "RemoteAccess", "client_ip": outside,
                       "client_os": "Windows", "vpn_client_application": "Cisco AnyConnect",
                       "connection_duration": 0, "bytes_transmitted": 0, "bytes_received": 0}
            login = {**who, "description": "VPN login", "vpn_sessions": [session],
                     "discovery_header": {**header, "event_subtype": 2}}
            yield 170, "user", login
            duration = rng.randint(300, 28_800)
            yield 171, "user", {**login, "description": "VPN logoff", "vpn_sessions": [{
                **session, "connection_duration": duration,
                "bytes_transmitted": duration * rng.randint(1_000, 50_000),
                "bytes_received": duration * rng.randint(5_000, 200_000)}]}
            return
        if kind == 94:
            yield 94, "user", {**who, "discovery_header": {**header, "event_subtype": 1}}
        yield 95, "user", {**who, "discovery_header": {**header, "event_subtype": 2}}

    def _correlation(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """A correlation rule that fired on an intrusion-like event between two hosts."""
        rng = self._rng
        values = self._flow(archive)
        rule = self._pools.pick(rng, 70, "id") or 0
        values.update(
            correlation_event_second=values["event_second"],
            event_id=rng.randint(1, 1 << 20),
            priority_id=rng.choice((1, 2, 3)),
            event_description="Correlation rule triggered",
            correlation_event_type=1,
            correlation_rule_id=rule,
            correlation_policy_id=1 if rule else 0,
            trigger_event_second=values["event_second"],
            trigger_event_microsecond=values["event_microsecond"],
            source_host_type=0, destination_host_type=0,
            source_port=values["source_port"], destination_port=values["destination_port"],
            impact=rng.randint(1, 3),
        )
        yield 112, "correlation", values


def _archive_time(record: HistoryRecord) -> int:
    return record.archive_timestamp or 0


# Logical events per family, out of 80: mostly connections, some intrusions and user logins,
# a discovery burst now and then (one pick is 1–7 records), few files, correlations and
# malware events.
_WEIGHTS = {"intrusion": 12, "connection": 50, "file": 5, "malware": 2, "discovery": 5,
            "user": 4, "correlation": 2, "user_input": 1}

_GENERATES = {"user_input": "discovery"}
"""Generators whose records belong to another family (the one a request names)."""

# What changes on a known host: record type → (weight, discovery event type, subtype). Event
# types and subtypes as eNcore 5.2.11 `definitions/core.py` names them (1001 change, 1002
# user input for host attributes, 1008 IOC); weights: service and client updates most, host
# limits, address changes and identity conflicts least.
_HOST_CHANGES: dict[int, tuple[int, int, int]] = {
    16: (6, 1001, 6), 17: (3, 1001, 10), 18: (3, 1001, 2), 19: (3, 1001, 7),
    20: (1, 1001, 3), 21: (1, 1001, 19), 22: (2, 1001, 5), 23: (2, 1001, 8),
    24: (1, 1001, 9), 25: (2, 1001, 11), 26: (1, 1001, 12), 27: (1, 1001, 13),
    28: (1, 1001, 14), 29: (1, 1001, 1), 31: (1, 1001, 16), 34: (1, 1001, 18),
    35: (2, 1001, 20), 42: (2, 1001, 21), 44: (1, 1001, 23), 45: (2, 1001, 24),
    46: (1, 1002, 6), 47: (1, 1002, 7), 48: (1, 1002, 8), 51: (2, 1001, 25),
    52: (1, 1001, 26), 53: (2, 1001, 27), 102: (1, 1001, 29), 103: (1, 1001, 30),
    107: (4, 1001, 32), 160: (2, 1008, 1),
}

# User input: record type → (weight, subtype of event type 1002), subtypes as eNcore names
# them (the "V2" forms where there are two).
_USER_INPUT: dict[int, tuple[int, int]] = {
    74: (1, 16), 75: (1, 19), 76: (1, 14), 77: (1, 15), 78: (1, 20), 79: (1, 21),
    80: (1, 22), 81: (1, 23), 82: (2, 24), 83: (2, 25), 84: (1, 26), 85: (1, 27),
    86: (1, 28), 87: (1, 29), 88: (1, 30), 89: (2, 11),
}


def _blocks_of(family: str) -> tuple[int, ...] | None:
    if family not in BLOCK_VERSIONS:
        return None
    return tuple(block for _, block in available_blocks(family))


def _packet(rng: random.Random, values: Mapping[str, Any]) -> bytes:
    """A plausible Ethernet + IPv4 + TCP/UDP frame for the event's endpoints (checksums
    of the transport left 0: nothing reads them, and a zero checksum is legal for UDP)."""
    import ipaddress

    payload = b"GET /index.php?id=1%27%20OR%201=1 HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
    proto = values.get("protocol", 6)
    src = ipaddress.IPv4Address(values["source_ip"]).packed
    dst = ipaddress.IPv4Address(values["destination_ip"]).packed
    sport, dport = values["source_port"], values["destination_port"]
    if proto == 6:
        transport = struct.pack(">HHLLBBHHH", sport, dport, rng.getrandbits(32),
                                rng.getrandbits(32), 5 << 4, 0x18, 64240, 0, 0)
    elif proto == 1:  # ICMP: the "ports" are its type and code
        transport = struct.pack(">BBHHH", sport, dport, 0, rng.getrandbits(16), 1)
    else:
        transport = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0)
    total = 20 + len(transport) + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, rng.getrandbits(16), 0x4000, 64,
                     proto, 0, src, dst)
    checksum = sum(struct.unpack(">10H", ip))
    checksum = (checksum & 0xFFFF) + (checksum >> 16)
    checksum = ~((checksum & 0xFFFF) + (checksum >> 16)) & 0xFFFF
    ip = ip[:10] + struct.pack(">H", checksum) + ip[12:]
    ethernet = bytes.fromhex("0050568a1b2c0050568a3d4e0800")
    return ethernet + ip + transport + payload


# -- filling a layout by field name ------------------------------------------------------------

ValueSource = Callable[[str, Any], tuple[bool, Any]]

# A plan is a layout flattened once for generation: what to do per field, with the fields of
# every renderable block version merged (first occurrence wins, as the values are shared).
_VALUE, _NESTED, _LIST, _BLOCK, _BLOCK_TYPE = range(5)
_PLANS: dict[tuple[int, tuple[int, ...] | None], tuple] = {}


def _plan(layout: tuple, inline_blocks: tuple[int, ...] | None = None) -> tuple:
    key = (id(layout), inline_blocks)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = tuple(_make_plan(layout, inline_blocks, set()))
    return plan


def _make_plan(layout: tuple, inline_blocks: tuple[int, ...] | None,
               seen: set[str]) -> Iterator[tuple]:
    for name, kind in layout:
        if isinstance(kind, Block):
            types = inline_blocks if kind.inline and inline_blocks else kind.types
            registered = [t for t in types or () if (kind.series, t) in BLOCKS]
            if not registered:
                raise ValueError(f"cannot generate block field {name!r}: no block type known")
            if kind.inline:
                for block_type in registered:
                    yield from _make_plan(BLOCKS[(kind.series, block_type)].layout, None, seen)
                if "block_type" not in seen:
                    seen.add("block_type")
                    yield (_BLOCK_TYPE, "block_type", registered[0])
            elif name not in seen:
                seen.add(name)
                sub = tuple(_make_plan(BLOCKS[(kind.series, registered[0])].layout, None, set()))
                yield (_BLOCK, name, (registered[0], sub))
            continue
        if name is None or name in seen or isinstance(kind, LengthOf):
            continue  # a length word is computed by the encoder from its text
        seen.add(name)
        if isinstance(kind, Nested):
            yield (_NESTED, name, tuple(_make_plan(kind.compiled.layout, None, set())))
        elif isinstance(kind, ListOf):
            yield (_LIST, name, kind.inner)
        else:
            yield (_VALUE, name, kind)


def _fill(layout: tuple, values: Mapping[str, Any], source: ValueSource, unfilled: set[str],
          inline_blocks: tuple[int, ...] | None = None) -> dict[str, Any]:
    """A dict for `layout` (decode-shaped): the given values where the layout names them,
    else `source`, else the type's zero. `inline_blocks` lists the block types an inline
    block may be rendered as; every one of their fields gets a value."""
    return _apply(_plan(layout, inline_blocks), values, source, unfilled)


def _apply(plan: tuple, values: Mapping[str, Any], source: ValueSource,
           unfilled: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for step, name, detail in plan:
        if step == _VALUE:
            if name in values:
                out[name] = values[name]
                continue
            found, value = source(name, detail)
            if not found:
                unfilled.add(name)
                value = _zero(detail)
            out[name] = value
        elif step == _BLOCK_TYPE:
            out[name] = values.get(name, detail)
        elif step == _NESTED:
            out[name] = _apply(detail, values.get(name) or {}, source, unfilled)
        elif step == _LIST:
            # Items come whole from the event; each is completed from its block's layout,
            # so the history holds exactly what a decoder gives back.
            out[name] = [_item(detail, item, source, unfilled)
                         for item in values.get(name, [])]
        else:
            block_type, sub = detail
            out[name] = {"block_type": block_type,
                         **_apply(sub, values.get(name) or {}, source, unfilled)}
    return out


def _item(block: Block, item: Mapping[str, Any], source: ValueSource,
          unfilled: set[str]) -> dict[str, Any]:
    block_type = item.get("block_type") or (block.types or (None,))[0]
    compiled = block.layout_for(block_type) if block_type is not None else None
    if compiled is None:
        raise ValueError(f"cannot generate a list item of block type {block_type}")
    return {"block_type": block_type, **_fill(compiled.layout, item, source, unfilled)}


def _zero(kind: Any) -> Any:
    if isinstance(kind, When):
        return kind.kind.default
    if isinstance(kind, Fixed):
        return kind.default
    if kind is BLOB or (isinstance(kind, TextFrom) and not kind.as_text):
        return ""
    return getattr(kind, "default", "") or ""
