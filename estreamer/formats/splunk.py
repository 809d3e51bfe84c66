"""Splunk key=value: `key=value` pairs separated by spaces, as eNcore's splunk adapter
writes them, so existing Splunk field extractions keep working. Nested mappings flatten to
dotted keys (`discovery_header.event_type=1003`); lists flatten with their index."""

from typing import Any

_NEEDS_QUOTES = set(' "=\t\r\n,')


def _quote(value: str) -> str:
    if value and not _NEEDS_QUOTES.intersection(value):
        return value
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _pairs(prefix: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _pairs(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _pairs(f"{prefix}.{index}", inner, out)
    elif value is None:
        return
    elif isinstance(value, str):
        out.append(f"{prefix}={_quote(value)}")
    else:
        out.append(f"{prefix}={value}")


def format_splunk(record: dict[str, Any]) -> bytes:
    out: list[str] = []
    _pairs("", record, out)
    return " ".join(out).encode()
