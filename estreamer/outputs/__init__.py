"""Outputs: where formatted lines go. `open_output` turns an eNcore stream URI into one.

Supported: `relfile:///dir/name.{0}.json` (relative to `base_dir`, the config file's
directory), `file:///abs/dir/name.{0}.json`, and `stdout://`. eNcore's other streams (udp,
tcp, scp) and the ones we plan (splunk HEC, syslog over TLS, kafka) are refused with a
ConfigError that says so, rather than eNcore's habit of writing to stdout instead."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from estreamer.config import StreamOptions
from estreamer.errors import ConfigError
from estreamer.outputs.base import Output
from estreamer.outputs.file import FileOutput
from estreamer.outputs.stdout import StdoutOutput

__all__ = ["FileOutput", "Output", "StdoutOutput", "open_output", "parse_file_uri"]

SUPPORTED_SCHEMES = ("relfile", "file", "stdout")
_PLANNED = ("udp", "tcp", "scp", "splunk", "hec", "syslog", "tls", "kafka", "http", "https",
            "string")


def open_output(
    uri: str,
    options: StreamOptions | Mapping[str, Any] | None = None,
    base_dir: str | os.PathLike[str] = ".",
) -> Output:
    """The output for one `stream.uri`; `options` is the stream's `options` (maxLogs,
    rotate), as StreamOptions or as the raw JSON mapping."""
    opts = _options(uri, options)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme == "stdout":
        return StdoutOutput()
    if scheme in ("relfile", "file"):
        directory, name = parse_file_uri(uri, base_dir)
        return FileOutput(directory, name, max_lines=opts.max_logs, rotate=opts.rotate)
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


def _options(uri: str, options: StreamOptions | Mapping[str, Any] | None) -> StreamOptions:
    if options is None:
        return StreamOptions()
    if isinstance(options, StreamOptions):
        return options
    max_logs = options.get("maxLogs", 10000)
    rotate = options.get("rotate", True)
    if isinstance(max_logs, bool) or not isinstance(max_logs, int) or max_logs < 1:
        raise ConfigError(f"output {uri}: maxLogs must be a whole number of at least 1, "
                          f"got {max_logs!r}")
    if not isinstance(rotate, bool):
        raise ConfigError(f"output {uri}: rotate must be true or false, got {rotate!r}")
    return StreamOptions(max_logs=max_logs, rotate=rotate)
