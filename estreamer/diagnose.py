"""`estreamer test -c CONFIG`: the checks a TAC engineer does by hand (config, PKCS#12,
addresses, telnet to 8302, the TLS handshake, the first eStreamer messages), in that order,
stopping at the first failure with one sentence that names the fault and the fix.

Each check builds on the one before, so the first failure is the one to fix: a TLS error
means nothing while TCP cannot connect. Warnings (a CN that is not this host's address, a
requested event type that did not arrive) do not stop the run, because only the FMC knows
whether NAT or its event configuration make them fine.

The protocol is the client's own (`ClientSession`, `parse_frame`) and failures are worded by
`tls.explain_tls_failure` where that already has the sentence; what only this module knows
(the CN seen in step 3, the reply that never came) is added here."""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import ipaddress
import os
import re
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from estreamer import tls
from estreamer.client.bookmark import Bookmark, BookmarkError, bookmark_path
from estreamer.client.protocol import ClientSession, ServerError, SessionFailed
from estreamer.config import (
    _UNSUPPORTED_OPTIONS,
    _UNSUPPORTED_OUTPUTTER,
    _UNSUPPORTED_RECORDS,
    _UNSUPPORTED_TOP,
    START_BOOKMARK,
    START_GENESIS,
    START_NOW,
    Secret,
    Settings,
    default_config,
    load_config,
    resolve_password,
)
from estreamer.errors import ConfigError, ProtocolError, TlsSetupError
from estreamer.protocol.annotate import annotate, describe_timestamp
from estreamer.protocol.flags import (
    LATEST_EVENTS,
    TIMESTAMP_NOW,
    TIMESTAMP_OLDEST,
    EventCode,
    RequestFlags,
)
from estreamer.protocol.framing import Framer
from estreamer.protocol.messages import (
    STREAMING_INFORMATION,
    StreamingInformation,
    parse_frame,
)
from estreamer.protocol.records import Record
from estreamer.protocol.stream import StreamFault

STEPS = ("config", "pkcs12", "address", "tcp", "tls", "estreamer")

# --- the sentences ----------------------------------------------------------------------
# Tests assert on these; change them deliberately.

UNKNOWN_KEYS = (
    "{file}: {keys} {verb} not a setting estreamer or eNcore knows and would be ignored: "
    "rename or remove {pronoun}."
)
PKCS12_PASSWORD_WRONG = (
    "The password for {name} is wrong: give the one set when the client was created on the "
    "FMC (ESTREAMER_PKCS12_PASSWORD, pkcs12PasswordFile or the prompt), or create the "
    "client again on the FMC and use its new PKCS#12."
)
CERT_EXPIRED = (
    "The client certificate in {name} expired on {date}: create a new client on the FMC "
    "(System > Integration > eStreamer > Create Client) and use its PKCS#12."
)
CERT_NOT_YET_VALID = (
    "The client certificate in {name} is not valid until {date}: set this host's clock "
    "right (use NTP), or check the FMC's clock if it issued the certificate in the future."
)
KEY_MISMATCH = (
    "The private key in {name} does not belong to its certificate: download the PKCS#12 "
    "again from the FMC (eStreamer > Create Client) instead of assembling one by hand."
)
CN_NOT_LOCAL = (
    "the certificate CN {cn} is not an address of this host, which reaches {host} from "
    "{source}: the FMC compares the CN with the address it sees, so this works only if NAT "
    "between here and the FMC translates {source} to {cn}; otherwise create a client for "
    "{source} on the FMC"
)
CN_OTHER_LOCAL = (
    "the certificate CN {cn} is an address of this host, but this host reaches {host} from "
    "{source}: the FMC will see {source} (or its NAT translation) and close the connection "
    "unless the CN matches it"
)
CN_NAME = (
    "the certificate CN {cn} is a name: the FMC resolves it with its own DNS and needs the "
    "address it sees this host connect from ({source} here, or its NAT translation); "
    "{local}"
)
REJECTED_AFTER_HANDSHAKE = (
    "The FMC at {host}:{port} closed the connection right after the TLS handshake, so it "
    "rejected this client certificate (unknown CA, or CN/IP mismatch{hint}): check the "
    "FMC's eStreamer client list and create a client for the address the FMC sees this host "
    "connect from (behind NAT, the translated one)."
)
SERVER_ERROR = (
    "The FMC at {host}:{port} answered with error {code} \"{text}\": the cause is on the "
    "FMC; look for it with `grep -i estreamer /var/log/messages` there."
)
SILENT = (
    "The FMC at {host}:{port} accepted the TLS connection but sent nothing within {seconds:g} "
    "s of the Event Stream Request: check that the eStreamer service runs on the FMC "
    "(`pstree -a | grep -i sfestreamer`; a full backup pauses it) and restart it if it hangs."
)
CLOSED_MID_STREAM = (
    "The FMC at {host}:{port} closed the connection after {records} records without an "
    "error message: look for the reason with `grep -i estreamer /var/log/messages` on the "
    "FMC (a run would reconnect and resume from the bookmark)."
)
BROKEN_STREAM = "The FMC at {host}:{port} sent a stream this client cannot follow: {reason}."
MISSING_TYPES = (
    "requested but not received within {seconds:g} s: {families}; the FMC sends only the "
    "event types ticked in its eStreamer Event Configuration (System > Integration > "
    "eStreamer) and only events newer than the start time"
)

# Which record categories each part of a request asks for (fact sheet §3.2, §4.2).
_FLAG_FAMILIES = (
    (RequestFlags.PACKETS, "packet"),
    (RequestFlags.IMPACT_ALERTS, "impact"),
    (RequestFlags.INTRUSION, "intrusion"),
    (RequestFlags.METADATA, "metadata"),
    (RequestFlags.EXTRA_DATA, "extra_data"),
)
_EVENT_FAMILIES = {
    EventCode.INTRUSION: "intrusion",
    EventCode.METADATA: "metadata",
    EventCode.CONNECTION: "connection",
    EventCode.FILE: "file",
    EventCode.MALWARE: "malware",
}

class CheckFailed(Exception):
    """A check failed; the message is the one sentence to print."""


@dataclass
class Diagnosis:
    """What the checks learned, for the checks after them and the summary."""

    settings: Settings | None = None
    password: Secret | None = None
    cert: x509.Certificate | None = None
    context: ssl.SSLContext | None = None
    cn: str | None = None
    source: str | None = None  # the local address this host reaches the FMC from
    cn_mismatch: bool = False
    sock: socket.socket | None = None
    tls_version: str = ""
    counts: Counter[tuple[int, str, str]] = field(default_factory=Counter)


class Checker:
    def __init__(
        self,
        config_path: str | os.PathLike[str],
        *,
        out: TextIO,
        verbose: bool = False,
        seconds: float = 5.0,
        env: Mapping[str, str] = os.environ,
        interactive: bool | None = None,
    ):
        self.config_path = config_path
        self.out = out
        self.verbose = verbose
        self.seconds = seconds
        self.env = env
        self.interactive = interactive
        self.d = Diagnosis()
        self._step = 0
        self.summary = ""

    # -- output ---------------------------------------------------------------------------

    def say(self, status: str, text: str) -> None:
        name = STEPS[self._step - 1] if self._step else ""
        print(f"[{self._step}/{len(STEPS)}] {name:<9} {status:<4} {text}", file=self.out)

    def note(self, text: str) -> None:
        print(f"{'':>16}{text}", file=self.out)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> int:
        checks = (self.check_config, self.check_pkcs12, self.check_address, self.check_tcp,
                  self.check_tls, self.check_estreamer)
        try:
            for number, check in enumerate(checks, 1):
                self._step = number
                check()
        except CheckFailed as failure:
            self.say("FAIL", str(failure))
            return 1
        finally:
            if self.d.sock is not None:
                with contextlib.suppress(OSError):
                    self.d.sock.close()
        print(f"Connection successful: {self.summary}", file=self.out)
        return 0

    # -- 1. config ------------------------------------------------------------------------

    def check_config(self) -> None:
        try:
            settings = load_config(self.config_path)
        except ConfigError as exc:
            raise CheckFailed(f"The config cannot be used: {exc}.") from None
        if settings.unknown:
            raise CheckFailed(unknown_keys_sentence(settings))
        self.d.settings = settings
        server = settings.server
        self.say("ok", f"{settings.path}: server {server.host}:{server.port}, "
                       f"{describe_start(settings)}, request flags "
                       f"0x{int(settings.request_flags()):08x}")
        for line in settings.report_lines():
            self.note(f"note: {line}")
        if not settings.enabled:
            self.note('note: "enabled" is false, so `estreamer run` would do nothing')
        try:
            self.d.password = resolve_password(settings, server, env=self.env,
                                               interactive=self.interactive)
        except ConfigError as exc:
            raise CheckFailed(f"{exc}.") from None

    # -- 2. PKCS#12 -----------------------------------------------------------------------

    def check_pkcs12(self) -> None:
        settings, password = self.d.settings, self.d.password
        assert settings is not None and password is not None
        server = settings.server
        path = server.pkcs12_filepath
        try:
            key, cert, extras = tls.load_pkcs12(path, password.reveal())
        except TlsSetupError as exc:
            if str(exc) == tls.PKCS12_WRONG_PASSWORD.format(name=path.name):
                raise CheckFailed(PKCS12_PASSWORD_WRONG.format(name=path.name)) from None
            raise CheckFailed(_sentence(str(exc))) from None
        now = dt.datetime.now(dt.UTC)
        if cert.not_valid_after_utc < now:
            raise CheckFailed(CERT_EXPIRED.format(name=path.name,
                                                  date=_day(cert.not_valid_after_utc)))
        if cert.not_valid_before_utc > now:
            raise CheckFailed(CERT_NOT_YET_VALID.format(name=path.name,
                                                        date=_day(cert.not_valid_before_utc)))
        if not key_matches(key, cert):
            raise CheckFailed(KEY_MISMATCH.format(name=path.name))
        try:
            self.d.context = tls.client_context(path, password.reveal(),
                                                ca_file=server.ca_filepath,
                                                verify=server.verify_server,
                                                tls_version=server.tls_version)
        except TlsSetupError as exc:
            raise CheckFailed(_sentence(str(exc))) from None
        self.d.cert = cert
        self.d.cn = _common_name(cert.subject)
        days = (cert.not_valid_after_utc - now).days
        self.say("ok", f"{path}: subject CN {self.d.cn or '(none)'}, issuer "
                       f"{cert.issuer.rfc4514_string()}, valid {_day(cert.not_valid_before_utc)}"
                       f" to {_day(cert.not_valid_after_utc)} ({days} days left)")
        if days < 30:
            self.note(f"warning: the client certificate expires in {days} days; create a new "
                      "client on the FMC before then")
        if server.ca_filepath is not None:
            self.note(f"server trust: CA file {server.ca_filepath}")
        else:
            cas = [c.subject.rfc4514_string() for c in extras if c.subject == c.issuer]
            self.note(f"server trust: CA from the PKCS#12 ({'; '.join(cas) or 'its chain'})")

    # -- 3. CN versus this host's addresses -----------------------------------------------

    def check_address(self) -> None:
        settings = self.d.settings
        assert settings is not None
        host, port, cn = settings.server.host, settings.server.port, self.d.cn
        source = route_source(host, port)
        self.d.source = source
        if source is None:
            self.say("skip", f"{host} does not resolve here; the TCP check says why")
            return
        if not cn:
            self.d.cn_mismatch = True
            self.say("warn", "the client certificate has no CN, so the FMC cannot match it "
                             "to this host's address")
            return
        local = local_addresses() | {source}
        try:
            ip = str(ipaddress.ip_address(cn))
        except ValueError:
            resolved = _resolve(cn)
            self.d.cn_mismatch = source not in resolved
            here = (f"here it resolves to {', '.join(resolved)}" if resolved
                    else "it does not resolve here")
            if self.d.cn_mismatch:
                here += f", not {source}: check `nslookup {cn}` on the FMC too"
            else:
                here += ": check `nslookup " + cn + "` on the FMC gives the same"
            self.say("warn" if self.d.cn_mismatch else "ok",
                     CN_NAME.format(cn=cn, source=source, local=here))
            return
        if ip == source:
            self.say("ok", f"the certificate CN {cn} is the address this host connects to "
                           f"{host} from (behind NAT the FMC sees the translated address)")
            return
        self.d.cn_mismatch = True
        template = CN_OTHER_LOCAL if ip in local else CN_NOT_LOCAL
        self.say("warn", template.format(cn=cn, host=host, source=source))

    # -- 4. TCP ---------------------------------------------------------------------------

    def check_tcp(self) -> None:
        settings = self.d.settings
        assert settings is not None
        host, port = settings.server.host, settings.server.port
        timeout = settings.connect_timeout
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise CheckFailed(tls.explain_tls_failure(
                exc if isinstance(exc, socket.gaierror) else socket.gaierror(str(exc)),
                host=host, port=port)) from None
        addresses = sorted({str(info[4][0]) for info in infos})
        started = time.monotonic()
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise CheckFailed(tls.explain_tls_failure(exc, host=host, port=port)) from None
        self.d.sock = sock
        elapsed = (time.monotonic() - started) * 1000
        local = sock.getsockname()
        self.d.source = str(local[0])
        self.say("ok", f"{host}:{port} ({', '.join(addresses)}) connected in {elapsed:.0f} ms "
                       f"from {local[0]}:{local[1]}")

    # -- 5. TLS ---------------------------------------------------------------------------

    def check_tls(self) -> None:
        settings, context, raw = self.d.settings, self.d.context, self.d.sock
        assert settings is not None and context is not None and raw is not None
        raw.settimeout(settings.connect_timeout)
        try:
            sock = context.wrap_socket(raw, server_hostname=None)
        except (OSError, EOFError) as exc:
            raise CheckFailed(self.explain(exc, received=0)) from None
        self.d.sock = sock
        self.d.tls_version = sock.version() or "?"
        cipher = sock.cipher()
        self.say("ok", f"{self.d.tls_version}, cipher {cipher[0] if cipher else '?'}, "
                       f"client certificate sent")
        der = sock.getpeercert(binary_form=True)
        if der:
            server_cert = x509.load_der_x509_certificate(der)
            days = (server_cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
            self.note(f"server certificate: {server_cert.subject.rfc4514_string()}, issued by "
                      f"{server_cert.issuer.rfc4514_string()}, valid to "
                      f"{_day(server_cert.not_valid_after_utc)} ({days} days left)")
        if not settings.server.verify_server:
            self.note("warning: " + tls.VERIFY_OFF_WARNING)
        else:
            self.note("server chain verified against the trusted CA")

    # -- 6. eStreamer ---------------------------------------------------------------------

    def check_estreamer(self) -> None:
        settings, sock = self.d.settings, self.d.sock
        assert settings is not None and isinstance(sock, ssl.SSLSocket)
        host, port = settings.server.host, settings.server.port
        flags = settings.request_flags()
        initial = initial_timestamp(settings)
        session = ClientSession(initial, flags, LATEST_EVENTS)
        sent, received = Framer(), Framer()
        deadline = time.monotonic() + self.seconds
        got_bytes = 0
        records = 0
        information: StreamingInformation | None = None
        faults: list[str] = []

        def send(data: bytes) -> None:
            if data:
                if self.verbose:
                    sent.feed(data)
                    for frame in sent.frames():
                        self.hexdump("->", frame)
                sock.sendall(data)

        def receive() -> bytes | None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                data = sock.recv(1 << 18)
            except TimeoutError:
                return None
            if not data:
                raise EOFError
            return data

        try:
            send(session.start())
            data = receive()
        except (OSError, EOFError) as exc:
            raise CheckFailed(self.explain(exc, received=0)) from None
        while data is not None:
            got_bytes += len(data)
            # A second framer over the same bytes: the session keeps its messages to
            # itself, and the dump and the summary want to see them.
            received.feed(data)
            for frame in received.frames():
                if self.verbose:
                    self.hexdump("<-", frame)
                if frame.message_type == STREAMING_INFORMATION:
                    with contextlib.suppress(ProtocolError):
                        information = parse_frame(frame)  # type: ignore[assignment]
            for event in session.receive(data):
                if isinstance(event, Record):
                    records += 1
                    self.d.counts[(event.record_type, event.name, event.category)] += 1
                elif isinstance(event, ServerError):
                    raise CheckFailed(SERVER_ERROR.format(host=host, port=port, code=event.code,
                                                          text=event.text))
                elif isinstance(event, SessionFailed):
                    raise CheckFailed(BROKEN_STREAM.format(host=host, port=port,
                                                           reason=event.reason))
                elif isinstance(event, StreamFault):
                    faults.append(f"byte {event.offset}: {event.message}")
            try:
                send(session.data_to_send())
                data = receive()
            except (OSError, EOFError) as exc:
                raise CheckFailed(self.explain(exc, received=got_bytes, records=records)) \
                    from None
        if got_bytes == 0 and session.extended:
            raise CheckFailed(SILENT.format(host=host, port=port, seconds=self.seconds))
        reply = "no reply (a plain request is answered only with events)"
        if session.extended:
            offered = information_services(information)
            reply = f"2051 Streaming Information (services {offered}), 2049 sent"
        self.say("ok", f"request 0x{int(flags):08x} from {describe_timestamp(initial)}; "
                       f"{reply}; {records} records in {self.seconds:g} s")
        if self.d.counts:
            self.note("received: " + families_line(self.d.counts))
        if self.verbose:
            for (record_type, name, _category), count in sorted(self.d.counts.items()):
                self.note(f"{record_type:>5} {name}: {count}")
        for fault in faults[:5]:
            self.note(f"warning: could not decode {fault}")
        missing = missing_families(flags, self.d.counts)
        if missing:
            self.note("note: " + MISSING_TYPES.format(seconds=self.seconds,
                                                      families=", ".join(missing)))
        self.summary = (f"{host}:{port} over {self.d.tls_version}, {records} records of "
                        f"{len({k[0] for k in self.d.counts})} types in {self.seconds:g} s")

    # -- helpers --------------------------------------------------------------------------

    def explain(self, exc: BaseException, *, received: int, records: int = 0) -> str:
        settings = self.d.settings
        assert settings is not None
        host, port = settings.server.host, settings.server.port
        sentence = tls.explain_tls_failure(exc, host=host, port=port)
        if sentence != tls.CLOSED_AFTER_HANDSHAKE.format(host=host, port=port):
            return sentence
        # A close with no eStreamer Error: before any byte it is the FMC's verdict on the
        # certificate (it says nothing else, fact sheet §1); after data, something else.
        if received:
            return CLOSED_MID_STREAM.format(host=host, port=port, records=records)
        hint = ""
        if self.d.cn_mismatch and self.d.cn:
            hint = (f": the certificate CN is {self.d.cn}, this host connects from "
                    f"{self.d.source}")
        return REJECTED_AFTER_HANDSHAKE.format(host=host, port=port, hint=hint)

    def hexdump(self, arrow: str, frame: Any) -> None:
        for line in annotate(arrow, frame):
            print(line, file=self.out)


# --- pieces the checks use, and tests too -------------------------------------------------


def unknown_keys_sentence(settings: Settings) -> str:
    known = known_keys()
    parts = []
    for path in settings.unknown:
        section, _, key = re.sub(r"\[\d+\]", "[]", path).rpartition(".")
        close = difflib.get_close_matches(key, sorted(known.get(section, ())), n=1, cutoff=0.6)
        prefix = path[: len(path) - len(key)]
        parts.append(f"{path} (did you mean {prefix}{close[0]}?)" if close else path)
    plural = len(parts) > 1
    return UNKNOWN_KEYS.format(file=settings.path.name, keys=", ".join(parts),
                               verb="are" if plural else "is", pronoun="them" if plural else "it")


def known_keys() -> dict[str, set[str]]:
    """Every key each config section may hold ("" the top, list items as "[]"), from the
    config this project generates with every option on, plus the eNcore keys we read but do
    not act on. Used only to suggest a correction for a misspelt key."""
    sample = default_config("h", 1, "p", ca_file="c", password_file="p", verify_server=False,
                            bookmark_directory="b")
    sample["monitor"]["details"] = False
    sample["logging"]["stdErr"] = False
    keys: dict[str, set[str]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            keys.setdefault(path, set()).update(k for k in value if "@" not in k)
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    walk(sample, "")
    keys[""].update(_UNSUPPORTED_TOP)
    keys.setdefault("subscription.records", set()).update(_UNSUPPORTED_RECORDS)
    keys.setdefault("handler.outputters[]", set()).update(_UNSUPPORTED_OUTPUTTER)
    keys.setdefault("handler.outputters[].stream.options", set()).update(_UNSUPPORTED_OPTIONS)
    return keys


def initial_timestamp(settings: Settings) -> int:
    """The initial timestamp `estreamer run` would request now (the bookmark is only read)."""
    if settings.start == START_GENESIS:
        return TIMESTAMP_OLDEST
    if settings.start == START_NOW:
        return TIMESTAMP_NOW
    server = settings.server
    try:
        saved = Bookmark.load(bookmark_path(settings.bookmark_dir(), server.host, server.port))
    except BookmarkError as exc:
        raise CheckFailed(_sentence(str(exc))) from None
    return (saved.timestamp if saved is not None else None) or 0


def describe_start(settings: Settings) -> str:
    return {START_GENESIS: "start 0 (oldest data)", START_NOW: "start 1 (from now)",
            START_BOOKMARK: "start 2 (bookmark)"}[settings.start]


def information_services(info: StreamingInformation | None) -> str:
    if info is None:
        return "none seen"
    return ", ".join(str(s.service_id) for s in info.services)


def families_line(counts: Counter[tuple[int, str, str]]) -> str:
    """`connection 101 (type 71), metadata 92 (24 types), ...`, biggest first."""
    by_family: dict[str, Counter[int]] = {}
    for (record_type, _name, category), count in counts.items():
        by_family.setdefault(category, Counter())[record_type] += count
    parts = []
    for family, types in sorted(by_family.items(), key=lambda kv: -kv[1].total()):
        which = f"type {next(iter(types))}" if len(types) == 1 else f"{len(types)} types"
        parts.append(f"{family} {types.total()} ({which})")
    return ", ".join(parts)


def requested_families(flags: RequestFlags) -> list[str]:
    families = [name for flag, name in _FLAG_FAMILIES if flags & flag]
    if flags & RequestFlags.EXTENDED:
        for _version, code in LATEST_EVENTS:
            name = _EVENT_FAMILIES.get(EventCode(code))
            if name and name not in families:
                families.append(name)
    return families


def missing_families(flags: RequestFlags, counts: Counter[tuple[int, str, str]]) -> list[str]:
    seen = {category for _type, _name, category in counts}
    if "file_malware" in seen:
        seen |= {"file", "malware"}
    return [f for f in requested_families(flags) if f not in seen]


def key_matches(key: tls.PrivateKey, cert: x509.Certificate) -> bool:
    """Whether `key` is the private half of `cert`'s public key. Hand-assembled PKCS#12
    files (openssl pkcs12 -export with the wrong -inkey, on old builds) can pair others."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def route_source(host: str, port: int) -> str | None:
    """The local address this host would use to reach host:port (a UDP socket's connect
    picks the route without sending a packet); None when host does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return None
    for family, kind, proto, _name, address in infos:
        with contextlib.suppress(OSError), socket.socket(family, kind, proto) as probe:
            probe.connect(address)
            return _plain(str(probe.getsockname()[0]))
    return None


def local_addresses() -> set[str]:
    """This host's addresses as its name resolves, plus loopback: enough to tell "an
    address of this host" from "some other machine's" without extra dependencies."""
    found = {"127.0.0.1", "::1"}
    for name in {socket.gethostname(), socket.getfqdn()}:
        found.update(_resolve(name))
    return found


def _resolve(name: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({_plain(str(info[4][0])) for info in infos})


def _plain(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _sentence(text: str) -> str:
    """A lower-case project message as a sentence of its own."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def diagnose_command(config: str, verbose: bool = False, seconds: float = 5.0) -> int:
    """`estreamer test`: 0 when every check passes, 1 at the first failure."""
    return Checker(config, out=sys.stdout, verbose=verbose, seconds=seconds).run()
