"""Which FMC a log line is about, when one process streams from several.

Each runner thread names its FMC once (`set_fmc`); every record logged from that thread, by
any module, then starts with `[host:port] `. Done at record creation, so it happens once per
line whatever the handlers and formats, and costs nothing when only one FMC is streamed."""

import logging
import threading

_local = threading.local()
_installed = False
_lock = threading.Lock()


def set_fmc(label: str | None) -> None:
    """Tag this thread's log lines with `label` (None: untagged)."""
    install()
    _local.label = label


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        make = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = make(*args, **kwargs)
            label = getattr(_local, "label", None)
            if label and isinstance(record.msg, str):
                record.msg = f"[{label}] {record.msg}"
                record.fmc = label  # for JSON logs, which give it a field of its own
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
