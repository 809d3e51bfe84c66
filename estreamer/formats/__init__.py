"""Output formats: a record's dict in, one line of bytes out (no trailing newline)."""

from collections.abc import Callable
from typing import Any

from estreamer.errors import ConfigError
from estreamer.formats.json import format_json
from estreamer.formats.splunk import format_splunk

Formatter = Callable[[dict[str, Any]], bytes]

FORMATS: dict[str, Formatter] = {"json": format_json, "splunk": format_splunk}


def get_formatter(name: str) -> Formatter:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise ConfigError(
            f"output format {name!r} is not supported; choose one of {', '.join(FORMATS)}"
        ) from None
