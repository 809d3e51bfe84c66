"""JSON lines, one object per record, via orjson (fast, and it refuses NaN/invalid UTF-8)."""

from typing import Any

import orjson


def format_json(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
