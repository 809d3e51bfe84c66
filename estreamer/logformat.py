"""How log lines look: eNcore's text layout by default, or one JSON object per line
(`logging.format: "json"` in the config, or `--log-json`) for log shippers that would
otherwise have to parse the text.

A JSON line has `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `fmc` when the
process streams from several FMCs (logcontext.py), `message`, and `exception` when there is
a traceback. The text layout keeps eNcore's level names, VERBOSE and TRACE included."""

from __future__ import annotations

import json
import logging
import time

from estreamer.config import TRACE, VERBOSE

JSON_FORMAT = "json"
"""The `logging.format` value that asks for JSON lines instead of a %-format."""


def install_level_names() -> None:
    """Show eNcore's two extra levels by their names, not as `Level 5`."""
    logging.addLevelName(VERBOSE, "VERBOSE")
    logging.addLevelName(TRACE, "TRACE")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fmc = getattr(record, "fmc", None)
        if fmc:
            # logcontext.py put the FMC in front of the text for text logs; JSON has a field.
            message = message.removeprefix(f"[{fmc}] ")
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, object] = {
            "time": f"{when}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        if fmc:
            line["fmc"] = fmc
        line["message"] = message
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
