"""The emulator's answer to Host Data Requests: full host profiles (block 149, see
`estreamer.protocol.tables.host`) built from the events its history streams, so a profile
names the same addresses, servers and ports a client has seen in events.

What is derived, and how (the history has no discovery events to copy from):

- hosts: every address that is a source or destination of an event;
- servers: the end of a flow whose port is well known (< 1024) runs a server on that port,
  TCP or UDP by the event's protocol, identified as the event's application protocol; hits
  count the events, last used is the newest event second;
- client applications: the other end runs a client of that application protocol;
- OS, criticality, MAC, hops, NetBIOS name, host ID: fixed functions of the address
  (internal 10.0.0.0/8 hosts get a MAC, a NetBIOS name and a criticality; outside hosts are
  several hops away with none), so every request gets the same answer.

How an answer is framed (a decision, fact sheet §6.4; no source says how a range answer
ends): one Single Host Data (6) message for a single-host request, one Multiple Host Data (7)
message per host for a range, in address order, then a Null. An address the FMC never saw
gets just the Null: an empty answer, not an error. Data types other than 6 and 7 (the 3.x-4.x
profile forms) are refused with an Error."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from estreamer.protocol.messages import (
    HOST_FLAG_NOTES,
    HOST_MULTIPLE,
    HOST_SINGLE,
    MULTIPLE_HOST_DATA,
    SINGLE_HOST_DATA,
    HostDataRequest,
    encode_host_data,
    encode_null,
)
from estreamer.protocol.tables.host import FULL_HOST_PROFILE, encode_host_profile

HOST_ID_NAMESPACE = uuid.UUID("6f1c3a52-0c8e-4d0e-9a57-6e6b0c1d2e3f")
"""uuid5 namespace of the emulator's host IDs (one stable ID per address)."""

OS_FINGERPRINTS = (
    "2b1a4e52-5c7f-4a7e-8f0e-000000000001",
    "2b1a4e52-5c7f-4a7e-8f0e-000000000002",
    "2b1a4e52-5c7f-4a7e-8f0e-000000000003",
    "2b1a4e52-5c7f-4a7e-8f0e-000000000004",
)
"""The OS fingerprint UUIDs hosts get, one per host by address."""

WELL_KNOWN = 1024
IPV4_ETHERTYPE = 0x0800
_INTERNAL = ipaddress.ip_network("10.0.0.0/8")
_TRANSPORT = {6: "tcp_servers", 17: "udp_servers"}


class UnsupportedHostRequest(ValueError):
    """A Host Data Request the emulator does not answer; the text is the Error's."""


@dataclass
class _Host:
    address: str
    last_seen: int = 0
    servers: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    clients: dict[int, dict[str, Any]] = field(default_factory=dict)
    protocols: set[int] = field(default_factory=set)


def observed_hosts(events: Iterable[Any]) -> dict[str, _Host]:
    """Every host the events name, with its servers and client applications."""
    hosts: dict[str, _Host] = {}
    for event in events:
        values: Mapping[str, Any] = event.fields
        src, dst = values.get("source_ip"), values.get("destination_ip")
        if not src or not dst:
            continue  # metadata, packets and extra data name no flow
        second = int(values.get("event_second") or event.archive_timestamp or 0)
        proto = int(values.get("protocol") or 0)
        app = int(values.get("application_id") or 0)
        sport, dport = int(values.get("source_port", 0)), int(values.get("destination_port", 0))
        server_side = (dst, dport, src) if dport < WELL_KNOWN else (src, sport, dst) \
            if sport < WELL_KNOWN else None
        for address in (src, dst):
            host = hosts.setdefault(address, _Host(address))
            host.last_seen = max(host.last_seen, second)
            if proto:
                host.protocols.add(proto)
        if server_side is None or proto not in _TRANSPORT:
            continue
        server_ip, port, client_ip = server_side
        server = hosts[server_ip].servers.setdefault(
            (proto, port), {"port": port, "hits": 0, "last_used": 0, "application_id": app})
        server["hits"] += 1
        server["last_used"] = max(server["last_used"], second)
        client = hosts[client_ip].clients.setdefault(app, {"hits": 0, "last_used": 0})
        client["hits"] += 1
        client["last_used"] = max(client["last_used"], second)
    return hosts


def _digest(address: str) -> int:
    return int.from_bytes(hashlib.blake2b(address.encode(), digest_size=4).digest(), "big")


def profile(host: _Host, *, notes: bool) -> dict[str, Any]:
    """The full host profile (block 149 fields) of one observed host."""
    n = _digest(host.address)
    internal = ipaddress.ip_address(host.address) in _INTERNAL
    fingerprint = {
        "os_fingerprint_uuid": OS_FINGERPRINTS[n % len(OS_FINGERPRINTS)],
        "fingerprint_type": 0, "source_type": 0, "source_id": 0,
        "last_seen": host.last_seen, "ttl_difference": 0, "mobile_devices": [],
    }
    servers: dict[str, list[dict[str, Any]]] = {"tcp_servers": [], "udp_servers": []}
    for (proto, port), seen in sorted(host.servers.items()):
        servers[_TRANSPORT[proto]].append({
            "port": port, "hits": seen["hits"], "last_used": seen["last_used"],
            "server_information": [{
                "application_id": seen["application_id"], "vendor": "", "version": "",
                "last_used": seen["last_used"], "source_type": 0, "source_id": 0,
                "sub_servers": [],
            }],
            "confidence": 100, "web_applications": [],
        })
    octets = host.address.replace(":", ".").split(".")
    return {
        "block_type": FULL_HOST_PROFILE,
        "host_id": str(uuid.uuid5(HOST_ID_NAMESPACE, host.address)),
        "ip_addresses": [{"ip_address": host.address, "last_seen": host.last_seen}],
        "hops": n % 3 if internal else 5 + n % 10,
        "os_derived_fingerprints": [fingerprint],
        "server_fingerprints": [fingerprint] if servers["tcp_servers"] else [],
        **servers,
        "network_protocols": [{"protocol_number": IPV4_ETHERTYPE}],
        "transport_protocols": [{"protocol_number": p} for p in sorted(host.protocols)],
        "mac_addresses": [{
            "ttl": 64, "mac": "02:00:" + ":".join(f"{b:02x}" for b in n.to_bytes(4, "big")),
            "primary": 1, "last_seen": host.last_seen,
        }] if internal else [],
        "last_seen": host.last_seen,
        "host_type": 0,
        "business_criticality": 1 + n % 3 if internal else 0,
        "client_applications": [
            {"hits": seen["hits"], "last_used": seen["last_used"],
             "client_application_id": app, "version": "", "web_applications": [],
             "vulnerabilities": []}
            for app, seen in sorted(host.clients.items())
        ],
        "netbios_name": f"WS-{'-'.join(octets)}" if internal else "",
        "notes": "profile made by the estreamer emulator" if notes else "",
    }


def host_answer(events: Iterable[Any], request: HostDataRequest) -> bytes:
    """The bytes that answer `request`: Host Data messages, then a Null (see module doc)."""
    if request.data_type not in (HOST_SINGLE, HOST_MULTIPLE):
        raise UnsupportedHostRequest(
            f"Host request data type {request.data_type} is not supported (5.0+ profiles: "
            f"6 single host, 7 multiple hosts)")
    try:
        start, end = ipaddress.ip_address(request.start), ipaddress.ip_address(request.end)
    except ValueError as exc:
        raise UnsupportedHostRequest(f"Host request has a bad address: {exc}") from None
    if start.version != end.version or start > end:
        raise UnsupportedHostRequest(
            f"Host request range {request.start}-{request.end} is empty or mixes IPv4/IPv6")
    if request.data_type == HOST_SINGLE:
        end = start
    hosts = observed_hosts(events)
    wanted = sorted(
        (address for address in hosts
         if (ip := ipaddress.ip_address(address)).version == start.version
         and start <= ip <= end),
        key=ipaddress.ip_address,
    )
    kind = SINGLE_HOST_DATA if request.data_type == HOST_SINGLE else MULTIPLE_HOST_DATA
    notes = bool(request.flags & HOST_FLAG_NOTES)
    out = [encode_host_data(kind, encode_host_profile(profile(hosts[a], notes=notes)))
           for a in wanted]
    out.append(encode_null())
    return b"".join(out)
