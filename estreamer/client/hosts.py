"""`estreamer host`: ask the FMC for the profiles of one host or an address range.

The exchange (fact sheet §6.3–§6.4, G54 p2-24): the client opens a session with an Event
Stream Request that asks for nothing (flags 0, timestamp "now", so no event is streamed),
then sends a Host Data Request (type 5). The server answers with one Host Data message per
host it knows, each carrying one full host profile block (tables/host.py).

When the answer is complete is not written down anywhere. We end it at the first of:
- the single-host answer (one Single Host Data message is all a single-host request gets);
- a Null from the server after the request (the emulator ends every answer with one, and an
  FMC sends Nulls as soon as it has nothing more to say);
- an Error (the server closes after it);
- `quiet` seconds without a byte (whatever arrived is the answer; the user is told).

`HostQuery` is that exchange as a sans-IO state machine; `query_hosts()` drives it over a
TLS connection with the same context, password and failure sentences as `estreamer run`."""

from __future__ import annotations

import ipaddress
import logging
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from estreamer.client.connection import Connection, ConnectionClosed
from estreamer.errors import ConfigError, DecodeError, EstreamerError
from estreamer.protocol.flags import TIMESTAMP_NOW
from estreamer.protocol.layout import Notes
from estreamer.protocol.messages import (
    HOST_FLAG_BANNERS,
    HOST_FLAG_NOTES,
    ErrorMessage,
    HostData,
    Null,
    encode_event_stream_request,
    encode_host_data_request,
    encode_null,
)
from estreamer.protocol.stream import StreamDecoder, StreamFault
from estreamer.protocol.tables.host import decode_host_profile

log = logging.getLogger("Hosts")

HOST_PROFILE_RECORD = "Host Profile"
"""`record_name` of a profile handed to the output formats."""


def parse_hosts(text: str) -> tuple[str, str]:
    """`10.1.2.3`, `10.1.2.0/24` or `10.1.2.3-10.1.2.9` → (first, last) address text."""
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            return str(network[0]), str(network[-1])
        if "-" in text:
            first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
            if first.version != last.version or first > last:
                raise ValueError(f"{first} - {last} is not a range of one address family")
            return str(first), str(last)
        address = ipaddress.ip_address(text)
        return str(address), str(address)
    except ValueError as exc:
        raise ConfigError(
            f"{text!r} is not an address, a network (10.1.2.0/24) or a range "
            f"(10.1.2.3-10.1.2.9): {exc}"
        ) from None


@dataclass
class HostAnswer:
    """What came back: the profiles (decoded dicts, `block_type` first), and how it ended."""

    profiles: list[dict[str, Any]] = field(default_factory=list)
    error: ErrorMessage | None = None
    problems: list[str] = field(default_factory=list)  # undecodable profiles, faults
    notes: Notes = field(default_factory=list)
    ended_by: str = ""  # "answer", "null", "error", "quiet", "closed"


class HostQuery:
    def __init__(self, start: str, end: str | None = None, *,
                 flags: int = HOST_FLAG_NOTES | HOST_FLAG_BANNERS):
        self.start_address = start
        self.end_address = start if end is None else end
        self.single = self.end_address == start
        self.flags = flags
        self.answer = HostAnswer()
        self.done = False
        self._decoder = StreamDecoder()
        self._outgoing = bytearray()

    def start(self) -> bytes:
        """Both requests at once: nothing is streamed, then the host request."""
        return encode_event_stream_request(TIMESTAMP_NOW, 0) + encode_host_data_request(
            self.start_address, self.end_address, flags=self.flags)

    def data_to_send(self) -> bytes:
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def receive(self, data: bytes) -> None:
        for event in self._decoder.feed(data):
            if self.done:
                return
            if isinstance(event, HostData):
                self._outgoing += encode_null()  # eNcore acknowledges every message
                self._profile(event)
                if self.single:
                    self._finish("answer")
            elif isinstance(event, Null):
                self._finish("null")
            elif isinstance(event, ErrorMessage):
                self.answer.error = event
                self._finish("error")
            elif isinstance(event, StreamFault):
                self.answer.problems.append(f"byte {event.offset}: {event.message}")
                if event.fatal:
                    self._finish("closed")
            # Event data or bundles would be a server ignoring flags 0; nothing to do.

    def _profile(self, message: HostData) -> None:
        try:
            profile, notes = decode_host_profile(message.body)
        except DecodeError as exc:
            self.answer.problems.append(
                f"a host profile at byte {message.offset} does not fit its layout ({exc}); "
                f"kept as raw hex")
            profile = {"raw": message.body.hex()}
            notes = []
        self.answer.profiles.append(profile)
        self.answer.notes.extend(notes)

    def _finish(self, how: str) -> None:
        self.done = True
        self.answer.ended_by = how


def query_hosts(
    host: str,
    port: int,
    context: ssl.SSLContext,
    query: HostQuery,
    *,
    connect_timeout: float = 10.0,
    quiet: float = 10.0,
) -> HostAnswer:
    """Run `query` over one TLS connection; network and TLS errors propagate."""
    connection = Connection(host, port, context, connect_timeout=connect_timeout,
                            read_timeout=min(quiet, 1.0))
    connection.open()
    try:
        connection.send(query.start())
        last_byte = time.monotonic()
        assert connection.sock is not None
        while not query.done:
            try:
                data = connection.sock.recv(1 << 18)
            except TimeoutError:
                if time.monotonic() - last_byte >= quiet:
                    query._finish("quiet")
                continue
            if not data:
                if query.answer.profiles or query.answer.error:
                    query._finish("closed")
                    break
                raise ConnectionClosed(f"the server {host}:{port} closed the connection")
            last_byte = time.monotonic()
            query.receive(data)
            connection.send(query.data_to_send())
    finally:
        connection.close()
    return query.answer


def host_event(profile: dict[str, Any]) -> dict[str, Any]:
    """A profile in the shape the output formats take (`record_name` first)."""
    addresses = [a.get("ip_address") for a in profile.get("ip_addresses", [])]
    return {"record_name": HOST_PROFILE_RECORD, "record_category": "host",
            "ip_address": addresses[0] if addresses else None, **profile}


def host_command(config_path: str, hosts: str, fmt: str = "json", notes: bool = True,
                 banners: bool = True, quiet: float = 10.0,
                 out: TextIO | None = None) -> int:
    """`estreamer host -c CONFIG ADDRESS|NETWORK|RANGE`: print each profile, one a line."""
    from estreamer.config import load_config, resolve_password
    from estreamer.formats import get_formatter
    from estreamer.tls import client_context, explain_tls_failure

    out = out or sys.stdout
    start, end = parse_hosts(hosts)
    formatter = get_formatter(fmt)
    settings = load_config(config_path)
    server = settings.server
    password = resolve_password(settings, server)
    context = client_context(server.pkcs12_filepath, password.reveal(),
                             ca_file=server.ca_filepath, verify=server.verify_server,
                             tls_version=server.tls_version)
    flags = (HOST_FLAG_NOTES if notes else 0) | (HOST_FLAG_BANNERS if banners else 0)
    query = HostQuery(start, end, flags=flags)
    try:
        answer = query_hosts(server.host, server.port, context, query,
                             connect_timeout=settings.connect_timeout, quiet=quiet)
    except (OSError, EOFError) as exc:  # ssl.SSLError and timeouts are OSErrors
        raise EstreamerError(explain_tls_failure(exc, host=server.host, port=server.port)) \
            from exc
    for profile in answer.profiles:
        out.write(formatter(host_event(profile)).decode() + "\n")
    out.flush()
    what = start if start == end else f"{start} - {end}"
    for problem in answer.problems:
        log.warning("%s", problem)
    for _, text in dict(answer.notes).items():
        log.info("%s", text)
    if answer.error is not None:
        log.error("the FMC refused the host request for %s: error %d: %s", what,
                  answer.error.code, answer.error.text)
        return 1
    if answer.ended_by == "quiet":
        log.warning("the FMC sent no end of answer for %s within %g s; printed what came",
                    what, quiet)
    if not answer.profiles:
        log.warning("the FMC has no host profile for %s (it has not seen such a host)", what)
        return 2
    return 0
