"""A deterministic history of eStreamer records for the FMC emulator.

`History(seed=…)` builds metadata first (devices, zones, interfaces, policies, rules, names
for applications, users, countries, file and malware types, OS fingerprints, correlation
policies …), then events, each with an archive timestamp, several per second, in roughly the
proportions an FMC shows: mostly connections (71), some intrusions (400 with its packet 2 and
extra data 110), user logins (RUA 94/95), discovery (RNA) events in bursts (a new host comes
with its servers, client applications and OS: records 10–18, 101, 107), few files (500/502),
correlation events (112) and malware (125). Every id, UUID and name an event refers to was sent
in a metadata record before it, as on a real FMC (fact sheet §5, CAP).

Values are produced by *field name*, walking the layout tables in
`estreamer.protocol.tables`: a field the tables add or rename still gets a value (a coherent
one when its name is in `REFERENCES` or the event's own values, its type's zero otherwise),
so a table change can never make the history stop encoding. Event families whose tables are
missing are simply not generated.

An event is kept as one dict holding the values of *every* block version its family can be
rendered in (`BLOCK_VERSIONS`), so the session renders the same event as block 160 for a
v14 request and 174 for v17, and the two copies carry the same values where fields agree.

The history grows at run time: `advance(now)` appends live events (archive timestamp = now)
at `rate` per second. Appends are locked; readers index the lists, which only grow."""

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
    "connection": (71,),
    "file": (500, 502),
    "malware": (125,),
    "discovery": (10, 11, 12, 13, 14, 15, 16, 18, 19, 101, 107),
    "user": (94, 95),
    "correlation": (112,),
}
"""Record types of each event family. Packets and extra data ride along with intrusion."""


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
}
"""Event field name → (metadata record type, key field). Drives both generation (a value is
picked from what that metadata holds) and the coherence test. A value of 0 or the zero UUID
means "none" and needs no metadata; every other value must have been sent before."""

NO_REFERENCE = (0, "00000000-0000-0000-0000-000000000000")


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


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class History:
    """Metadata plus events in archive-timestamp order, reproducible from `seed`.

    `size` is the number of logical events (an intrusion event and its packet and extra
    data count once). They end one second before `end_time` (default: now), so live events
    appended by `advance()` never go back in time."""

    def __init__(self, seed: int = 0, size: int = 500, *, end_time: int | None = None,
                 rate: float = 0.0, families: tuple[str, ...] | None = None):
        self.seed = seed
        self.rate = rate
        self.end_time = int(time.time()) if end_time is None else end_time
        self.families = tuple(
            f for f in (families or tuple(_WEIGHTS))
            if family_available(f)
        )
        self.with_packets = family_available("packet")
        self.with_extra_data = family_available("extra_data")
        self.metadata: list[HistoryRecord] = []
        self.events: list[HistoryRecord] = []
        self.unfilled: set[str] = set()  # field names that got only a type default
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._pools = _Pools()
        self._event_ids: dict[int, int] = {}
        self._connections: list[dict[str, Any]] = []
        self._counter = 0
        self._rendered: dict[tuple[int, int | None, bool], bytes] = {}
        self._live_start: float | None = None
        self._live_made = 0
        self._build_metadata()
        self._build_events(size)

    # -- reading ------------------------------------------------------------------------------

    def first_event_at_or_after(self, timestamp: int) -> int:
        """Index of the first event whose archive timestamp is ≥ `timestamp`."""
        return bisect.bisect_left(self.events, timestamp, key=_archive_time)

    def render(self, record: HistoryRecord, block_type: int | None = None,
               archive: bool = False) -> bytes:
        """The record's wire bytes (header + data): `block_type` for block families, the
        16-byte header with `archive` (events only; metadata never has one, §6.2)."""
        key = (id(record), block_type, archive and record.is_event)
        raw = self._rendered.get(key)
        if raw is None:
            values = dict(record.fields)
            if block_type is not None:
                values["block_type"] = block_type
            timestamp = record.archive_timestamp if archive else None
            raw = encode_record(record.record_type, values, timestamp)
            if len(self._rendered) < 200_000:  # a cap, so a long live run cannot grow forever
                self._rendered[key] = raw
        return raw

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
        family = self._rng.choices(
            self.families, weights=[_WEIGHTS[f] for f in self.families]
        )[0]
        for record_type, family_name, values in getattr(self, f"_{family}")(archive):
            self._append_event(record_type, family_name, values, archive)

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

    def _flow(self, archive: int) -> dict[str, Any]:
        """Values shared by every event family: endpoints, ports, times, device and the
        connection the event belongs to (intrusion and file events point at a recent one)."""
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
        values["initiator_port"] = values["source_port"]
        values["responder_port"] = values["destination_port"]
        values["initiator_country"] = values["source_country"]
        values["responder_country"] = values["destination_country"]
        return values

    def _intrusion(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        rng = self._rng
        values = self._flow(archive)
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

    def _connection(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        rng = self._rng
        values = self._flow(archive)
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

    def _file(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        rng = self._rng
        values = self._flow(archive)
        malware = rng.random() < 0.3
        values.update(
            file_event_timestamp=values["event_second"],
            disposition=3 if malware else rng.choice((1, 2)),
            action=4 if malware else rng.choice((1, 3)),
            file_sha256=rng.getrandbits(256).to_bytes(32, "big").hex(),
            file_name=rng.choice(_FILE_NAMES),
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
        12, 13, 14, 15, 101), or a change on a known one (16, 18, 19, 107)."""
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
        if rng.random() < 0.6:  # a host the sensor has not seen before
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
        else:  # what changes on a known host
            kind = rng.choice((16, 18, 19, 107))
            if kind == 16:
                yield event(16, 1001, 6, **server)
            elif kind == 18:
                yield event(18, 1001, 2, confidence=rng.choice((70, 90)),
                            os_fingerprint_uuid=fingerprint)
            elif kind == 19:
                yield event(19, 1001, 7)
            else:
                yield event(107, 1001, 32, **client)

    def _user(self, archive: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """A user seen logging in (95), now and then for the first time (94, then 95)."""
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
               "login_type": 0, "auth_type": 1, "reported_by": "ISE", "vpn_sessions": []}
        if rng.random() < 0.2:
            yield 94, "user", {**who, "first_name": username.title(), "last_name": "Example",
                               "discovery_header": {**header, "event_subtype": 1}}
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
            "user": 4, "correlation": 2}


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
