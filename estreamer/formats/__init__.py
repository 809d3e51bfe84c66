"""Output formats: a (decorated) event dict in, one line of bytes out (no trailing newline).

Formats are pure functions of the event: the same event always gives the same bytes (CEF's
syslog prefix uses the event's time and this host's name), which the golden-file tests rely
on. docs/formats.md describes each one."""

from collections.abc import Callable
from typing import Any

from estreamer.errors import ConfigError
from estreamer.formats.cef import format_cef
from estreamer.formats.ecs import format_ecs
from estreamer.formats.json import format_json
from estreamer.formats.splunk import format_splunk

Formatter = Callable[[dict[str, Any]], bytes]

FORMATS: dict[str, Formatter] = {
    "json": format_json,
    "splunk": format_splunk,
    "cef": format_cef,
    "ecs": format_ecs,
}


def get_formatter(name: str) -> Formatter:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise ConfigError(
            f"output format {name!r} is not supported; choose one of {', '.join(FORMATS)}"
        ) from None
