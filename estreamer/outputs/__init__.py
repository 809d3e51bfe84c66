"""Outputs: where formatted lines go. `open_output` turns an eNcore stream URI into one.

Supported (docs/outputs.md has the options of each):
* `relfile:///dir/name.{0}.json` (relative to `base_dir`, the config file's directory),
  `file:///abs/dir/name.{0}.json`, `stdout://`;
* eNcore's `udp://host:port` and `tcp://host:port` (lines as is);
* `syslog+udp://host[:514]`, `syslog+tcp://host[:601]`, `syslog+tls://host[:6514]` (also
  `tls://`): RFC 5424 or RFC 3164 syslog;
* Splunk HEC: `splunk+hec://host[:8088]` (HTTPS), `https://host:8088/services/collector`
  or `http://...` (plain HTTP, for a lab);
* Kafka: `kafka://broker1:9092,broker2:9092/topic`.
eNcore's `scp://` is refused with a ConfigError that says so, rather than eNcore's habit of
writing to stdout instead."""

import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from estreamer.config import FSYNC_POLICIES, StreamOptions
from estreamer.errors import ConfigError
from estreamer.outputs.base import KeyedOutput, Output
from estreamer.outputs.file import FileOutput
from estreamer.outputs.hec import HecOutput
from estreamer.outputs.stdout import StdoutOutput
from estreamer.outputs.syslog import NetworkOutput

__all__ = ["FileOutput", "HecOutput", "KeyedOutput", "NetworkOutput", "Output", "StdoutOutput",
           "open_output", "parse_file_uri"]

_NETWORK = {  # scheme → (transport, syslog format by default, default port)
    "udp": ("udp", None, None),
    "tcp": ("tcp", None, None),
    "syslog+udp": ("udp", "rfc5424", 514),
    "syslog+tcp": ("tcp", "rfc5424", 601),
    "syslog+tls": ("tls", "rfc5424", 6514),
    "tls": ("tls", "rfc5424", 6514),
}
_HEC = ("splunk+hec", "https", "http")
SUPPORTED_SCHEMES = ("relfile", "file", "stdout", *_NETWORK, *_HEC, "kafka")
_PLANNED = ("scp", "splunk", "hec", "syslog", "string")
HEC_TOKEN_ENV = "ESTREAMER_HEC_TOKEN"
KAFKA_PASSWORD_ENV = "ESTREAMER_KAFKA_PASSWORD"
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}\Z")  # what Kafka accepts as a topic name


def open_output(
    uri: str,
    options: StreamOptions | Mapping[str, Any] | None = None,
    base_dir: str | os.PathLike[str] = ".",
) -> Output:
    """The output for one `stream.uri`; `options` is the stream's `options`, as
    StreamOptions or as the raw JSON mapping."""
    opts = _options(uri, options)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme == "stdout":
        return StdoutOutput()
    if scheme in ("relfile", "file"):
        directory, name = parse_file_uri(uri, base_dir)
        return FileOutput(directory, name, max_lines=opts.max_logs, max_bytes=opts.max_bytes,
                          rotate=opts.rotate, compress=opts.compress, fsync=opts.fsync)
    if scheme in _NETWORK:
        return _network_output(uri, scheme, _Extra(uri, opts.extra, base_dir))
    if scheme in _HEC:
        return _hec_output(uri, scheme, _Extra(uri, opts.extra, base_dir))
    if scheme == "kafka":
        return _kafka_output(uri, _Extra(uri, opts.extra, base_dir))
    supported = ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
    if scheme in _PLANNED:
        raise ConfigError(f"output {uri}: {scheme}:// outputs are not supported yet "
                          f"(supported: {supported})")
    raise ConfigError(f"output {uri}: unknown kind of output (supported: {supported})")


def parse_file_uri(uri: str, base_dir: str | os.PathLike[str] = ".") -> tuple[Path, str]:
    """(directory, file name template) of a relfile:// or file:// URI."""
    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    if "?" in rest or "#" in rest:
        raise ConfigError(f"output {uri}: '?' and '#' are not allowed in a file URI")
    authority, slash, path = rest.partition("/")
    if scheme == "relfile" and authority:
        # relfile://data/x would make "data" a host name; eNcore needs three slashes too.
        raise ConfigError(f"output {uri}: write relfile:///{rest} (three slashes)")
    if scheme == "file" and authority not in ("", "localhost"):
        raise ConfigError(f"output {uri}: file:// URIs name a local path; "
                          f"write file:///absolute/path")
    if not slash:
        raise ConfigError(f"output {uri}: no path after {scheme}://")
    directory, _, name = path.rpartition("/")
    name = name or "log{0}"  # eNcore's name for a URI that ends in a slash
    if scheme == "relfile":
        return Path(base_dir) / directory, name
    return Path("/" + directory), name


class _Extra:
    """A network stream's `options`, each read once with its type checked; what is left
    over at the end is a typo and refused (a silently ignored option would be a surprise)."""

    def __init__(self, uri: str, data: Mapping[str, Any], base_dir: str | os.PathLike[str]):
        self.uri, self.data, self.base_dir = uri, dict(data), Path(base_dir)

    def take(self, key: str, kind: type | tuple[type, ...], default: Any,
             allowed: tuple[Any, ...] = ()) -> Any:
        value = self.data.pop(key, default)
        if value is default:
            return value
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            raise ConfigError(f"output {self.uri}: option {key} has the wrong type: {value!r}")
        if allowed and value not in allowed:
            raise ConfigError(f"output {self.uri}: option {key} must be one of "
                              f"{', '.join(map(str, allowed))}, got {value!r}")
        return value

    def path(self, key: str) -> Path | None:
        value = self.take(key, str, None)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def done(self) -> None:
        if self.data:
            raise ConfigError(f"output {self.uri}: unknown option(s) "
                              f"{', '.join(sorted(self.data))} for this kind of output")


def _host_port(uri: str, default_port: int | None) -> tuple[str, int]:
    parts = urlsplit(uri)
    try:
        port = parts.port or default_port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigError(f"output {uri}: expected {uri.split('://')[0]}://host:port")
    return parts.hostname, port


def _tls_context(extra: _Extra) -> ssl.SSLContext:
    ca_file = extra.path("caFile")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not extra.take("tlsVerify", bool, True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _network_output(uri: str, scheme: str, extra: _Extra) -> NetworkOutput:
    transport, syslog, default_port = _NETWORK[scheme]
    host, port = _host_port(uri, default_port)
    if syslog is not None:
        syslog = extra.take("syslogFormat", str, syslog, ("rfc5424", "rfc3164"))
    context = _tls_context(extra) if transport == "tls" else None
    output = NetworkOutput(
        host, port, transport=transport, syslog=syslog, context=context,
        framing=extra.take("framing", str, "octet-counting", ("octet-counting", "newline")),
        queue_size=extra.take("queueSize", int, 10000),
        overflow=extra.take("overflow", str, "block", ("block", "drop")),
        max_datagram=extra.take("maxDatagram", int, 1472),
        oversize=extra.take("oversize", str, "truncate", ("truncate", "drop")),
        facility=extra.take("facility", int, 1),
        app_name=extra.take("appName", str, "estreamer"),
        retry_for=float(extra.take("retryFor", (int, float), 60.0)),
    )
    extra.done()
    return output


def _hec_output(uri: str, scheme: str, extra: _Extra) -> HecOutput:
    url = "https://" + uri.split("://", 1)[1] if scheme == "splunk+hec" else uri
    _host_port(url, 8088)
    env = extra.take("tokenEnv", str, HEC_TOKEN_ENV)
    token_file = extra.path("tokenFile")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"output {uri}: cannot read tokenFile {token_file}: "
                              f"{exc.strerror}") from None
    elif os.environ.get(env):
        token = os.environ[env]
    else:
        raise ConfigError(f"output {uri}: no HEC token: set the environment variable {env} "
                          f"or name a file holding it with the option tokenFile")
    context = _tls_context(extra) if url.startswith("https://") else None
    output = HecOutput(
        url, token, context=context,
        sourcetype=extra.take("sourcetype", str, "cisco:estreamer:data"),
        source=extra.take("source", str, "estreamer"),
        index=extra.take("index", str, None),
        batch_lines=extra.take("batchSize", int, 500),
        gzip_level=extra.take("gzip", int, 6, tuple(range(10))),
        ack=extra.take("ack", bool, False),
        ack_timeout=float(extra.take("ackTimeout", (int, float), 60.0)),
        retry_for=float(extra.take("retryFor", (int, float), 60.0)),
    )
    extra.done()
    return output


def _kafka_output(uri: str, extra: _Extra) -> Output:
    # Imported here: librdkafka is loaded only by a config that asks for Kafka.
    from confluent_kafka import KafkaException

    from estreamer.outputs.kafka import KafkaOutput

    rest = uri.split("://", 1)[1]
    brokers, _, topic = rest.partition("/")
    if not brokers or "?" in rest or "#" in rest or not _TOPIC.match(topic):
        raise ConfigError(f"output {uri}: expected kafka://host:port[,host:port...]/topic "
                          f"(a topic name is letters, digits, '.', '_' and '-')")
    for broker in brokers.split(","):
        host, _, port = broker.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"output {uri}: broker {broker!r} is not host:port")
    key = extra.take("key", str, "device", ("device", "connection", "none"))
    env = extra.take("passwordEnv", str, KAFKA_PASSWORD_ENV)
    password_file = extra.path("passwordFile")
    config: dict[str, Any] = {}
    for name in list(extra.data):
        value = extra.take(name, (str, int, float, bool), None)
        if name == "sasl.password":
            raise ConfigError(f"output {uri}: keep the SASL password out of the config file: "
                              f"set the environment variable {env} or name a file holding it "
                              f"with the option passwordFile")
        if name.endswith(".location") and isinstance(value, str):
            value = str(extra.base_dir / Path(value).expanduser())  # relative: config's dir
        config[name] = value
    if password_file is not None:
        try:
            config["sasl.password"] = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"output {uri}: cannot read passwordFile {password_file}: "
                              f"{exc.strerror}") from None
    elif os.environ.get(env):
        config["sasl.password"] = os.environ[env]
    try:
        return KafkaOutput(brokers, topic, key=key, config=config)
    except ValueError as exc:
        raise ConfigError(f"output {uri}: {exc}") from None
    except KafkaException as exc:  # librdkafka refused a property (a typo, a bad value)
        raise ConfigError(f"output {uri}: {exc.args[0].str()}") from None


def _options(uri: str, options: StreamOptions | Mapping[str, Any] | None) -> StreamOptions:
    """The raw JSON `options` checked as config.py checks them (for callers that skip the
    config file, like tests and `estreamer demo`)."""
    if options is None:
        return StreamOptions()
    if isinstance(options, StreamOptions):
        return options
    file_stream = uri.split("://", 1)[0].lower() in ("relfile", "file", "stdout")
    own = ("maxLogs", "rotate", "maxBytes", "compress", "fsync") if file_stream else (
        "maxLogs", "rotate")
    extra = MappingProxyType({k: v for k, v in options.items() if k not in own})
    max_bytes = options.get("maxBytes") if file_stream else None
    if max_bytes is not None and not _whole(max_bytes):
        raise ConfigError(f"output {uri}: maxBytes must be a whole number of at least 1, "
                          f"got {max_bytes!r}")
    max_logs = options.get("maxLogs", 10000 if max_bytes is None else None)
    rotate = options.get("rotate", True)
    compress = options.get("compress", False) if file_stream else False
    fsync = options.get("fsync", "commit") if file_stream else "commit"
    if max_logs is not None and not _whole(max_logs):
        raise ConfigError(f"output {uri}: maxLogs must be a whole number of at least 1, "
                          f"got {max_logs!r}")
    for key, value in (("rotate", rotate), ("compress", compress)):
        if not isinstance(value, bool):
            raise ConfigError(f"output {uri}: {key} must be true or false, got {value!r}")
    if fsync not in FSYNC_POLICIES:
        raise ConfigError(f"output {uri}: fsync must be one of {', '.join(FSYNC_POLICIES)}, "
                          f"got {fsync!r}")
    return StreamOptions(max_logs=max_logs, rotate=rotate, max_bytes=max_bytes,
                         compress=compress, fsync=fsync, extra=extra)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
