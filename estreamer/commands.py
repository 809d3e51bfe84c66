"""What each CLI verb does. cli.py parses arguments; this module runs them."""

import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from estreamer.errors import EstreamerError
from estreamer.protocol.records import Record

log = logging.getLogger("estreamer")


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT/SIGTERM ask the runner to stop; it then flushes outputs and the bookmark."""

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: the user really wants out
            raise KeyboardInterrupt
        log.info("Received %s: stopping after flushing outputs and bookmark.",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_command(config_path: str, log_level: str | None, metrics: str | None = None,
                log_json: bool = False) -> int:
    """`estreamer run`: every FMC in the config at once, one thread each, so one FMC that
    fails or falls behind never stalls another. Exit 0 only if every runner ended cleanly."""
    from estreamer.cli import setup_logging
    from estreamer.config import HaPair, load_config, resolve_password
    from estreamer.job import build_ha_runner, build_runner
    from estreamer.logcontext import set_fmc
    from estreamer.progress import CatchUpReporter, progress_bars
    from estreamer.status import attach

    settings = load_config(config_path)
    log_file = settings.logging.filepath
    setup_logging(log_level or settings.logging.level, os.fspath(log_file) if log_file else None,
                  settings.logging.std_out, settings.logging.format, json_lines=log_json)
    if not settings.enabled:
        log.error("%s has \"enabled\": false; nothing to do.", settings.path)
        return 1
    stop = threading.Event()
    install_stop_handlers(stop)
    several = len(settings.fmcs) > 1
    runners = []
    # One runner per logical FMC: a lone server, or an HA pair read one member at a time.
    for fmc in settings.fmcs:
        set_fmc(fmc.label if several else None)
        runner: Any
        if isinstance(fmc, HaPair):
            passwords = [resolve_password(settings, member) for member in fmc.members]
            runner = build_ha_runner(settings, fmc, passwords, stop=stop)
            server = fmc.members[0]  # the status file keeps the first member's name
        else:
            server = fmc
            runner = build_runner(settings, resolve_password(settings, server), stop=stop,
                                  server=server)
        runner.monitor_details = settings.monitor.details
        runners.append((server, runner, fmc.label))
    set_fmc(None)
    endpoint = None
    if metrics is not None:
        from estreamer.metrics import Metrics, serve

        collector = Metrics()
        for server, runner, _label in runners:
            runner.on_report = collector.updater(server.host, server.port)
        endpoint = serve(metrics, collector)
        log.info("Prometheus metrics on %s/metrics", metrics)
    # Catch-up progress: bars on a terminal; elsewhere the monitor line says it.
    bars = progress_bars()
    for _server, runner, label in runners:
        runner.on_report = _chain(runner.on_report, CatchUpReporter(
            bars, label if several else ""))
    failures: list[BaseException] = []

    def stream(server, runner, label) -> None:
        set_fmc(label if several else None)
        status = attach(runner, settings, server)
        try:
            runner.run()
        except BaseException as exc:
            status.stopped(error=str(exc) or type(exc).__name__, snap=runner.snapshot())
            failures.append(exc)
            if not several:
                raise
            log.error("%s", exc)  # this FMC is done; the others go on
        else:
            status.stopped(snap=runner.snapshot())

    try:
        if not several:
            stream(*runners[0])
            return 0
        threads = [threading.Thread(target=stream, args=each, name=f"fmc-{each[2]}")
                   for each in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # join in slices so signals reach the main thread
                thread.join(0.5)
    finally:
        if bars is not None:
            bars.stop()
        if endpoint is not None:
            endpoint.shutdown()
    return 1 if failures else 0


Report = Callable[[Any], None]  # Runner.on_report: takes a MonitorSnapshot


def _chain(first: Report | None, second: Report) -> Report:
    """One `Runner.on_report` callback that calls both (first may be None)."""
    if first is None:
        return second

    def both(snap: Any) -> None:
        first(snap)
        second(snap)

    return both


def status_command(config_path: str) -> int:
    from estreamer.status import status_command as describe_status

    return describe_status(config_path)


def certs_init_command(directory: str, client_cn: str, server_cn: str, password: str | None,
                       force: bool) -> int:
    from estreamer.certs import init_certs

    bundle = init_certs(directory, client_cn=client_cn, server_cn=server_cn, password=password,
                        force=force)
    print(f"CA:                {bundle.ca_cert}")
    print(f"server:            {bundle.server_cert} (key {bundle.server_key})")
    print(f"client PKCS#12:    {bundle.client_pkcs12} (CN {bundle.client_cn})")
    print(f"client password:   in {bundle.client_password_file} (mode 0600)")
    return 0


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise EstreamerError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def emulate_command(directory: str, listen: str, rate: float, seed: int, history: int,
                    faults: list[str]) -> int:
    from estreamer.emulator.faults import Fault
    from estreamer.emulator.server import Emulator

    host, port = parse_listen(listen)
    emulator = Emulator(directory, host, port, rate=rate, seed=seed, history_size=history,
                        faults=[Fault.parse(f) for f in faults])
    stop = threading.Event()
    install_stop_handlers(stop)
    bound = emulator.start()
    log.info("FMC emulator listening on %s:%d (certificates in %s)", host, bound, directory)
    try:
        stop.wait()
    finally:
        emulator.stop()
        log.info("Emulator stopped; %d records sent.", len(emulator.ledger))
    return 0


def demo_command(follow: bool, history: int, rate: float, show: int) -> int:
    """The whole job on one machine: fresh certificates, the emulator on a free loopback
    port, the client with a generated eNcore-style config, events printed, rate reported."""
    from estreamer.certs import init_certs
    from estreamer.config import default_config, resolve_password, settings_from_dict
    from estreamer.emulator.server import Emulator
    from estreamer.job import build_runner

    workdir = Path(tempfile.mkdtemp(prefix="estreamer-demo-"))
    # The emulator's FMC-style log lines would drown the client's; keep its warnings only.
    logging.getLogger("Emulator").setLevel(logging.WARNING)
    bundle = init_certs(workdir / "certs", client_cn="127.0.0.1")
    emulator = Emulator(bundle.directory, "127.0.0.1", 0, rate=rate if follow else 0,
                        seed=1, history_size=history)
    port = emulator.start()
    config = default_config("127.0.0.1", port, bundle.client_pkcs12,
                            password_file=bundle.client_password_file,
                            uri="relfile:///output/encore.{0}.json", start=0,
                            log_filepath=os.fspath(workdir / "estreamer.log"))
    config["responseTimeout"] = 0.5
    config_path = workdir / "estreamer.conf"
    config_path.write_text(json.dumps(config, indent=2))
    settings = settings_from_dict(config, config_path)
    print(f"FMC emulator on 127.0.0.1:{port}; config, certificates and output in {workdir}",
          file=sys.stderr)

    shown: set[str] = set()

    def show_record(record: Record) -> None:
        # One event of each family, so a newcomer sees what intrusion, connection, file and
        # malware events look like; --show caps how many.
        if len(shown) < show and record.category not in shown | {"metadata", "packet"}:
            shown.add(record.category)
            event = record.to_dict()
            if runner.pipeline.decorate is not None:  # show what the outputs get: with names
                event = runner.pipeline.decorate(record, event)
            print(orjson.dumps(event, option=orjson.OPT_INDENT_2).decode())

    stop = threading.Event()
    install_stop_handlers(stop)
    try:
        runner = build_runner(settings, resolve_password(settings, settings.server), stop=stop,
                              on_record=show_record, max_retries=0)
        result = runner.run(stop_when_idle=None if follow else 1.0)
    finally:
        emulator.stop()
    busy = result.seconds - (1.0 if result.reason == "caught up" else 0.0)
    rate_seen = result.handled / busy if busy > 0 else 0.0
    sent = len(emulator.ledger)
    print(f"\n{result.handled} records received ({sent} sent by the emulator, "
          f"{result.duplicates} duplicates dropped) in {busy:.2f} s: {rate_seen:,.0f} ev/sec",
          file=sys.stderr)
    print(f"JSON output: {workdir / 'output'}", file=sys.stderr)
    if follow:
        return 0  # stopped by the user: what was in flight is the server's to resend
    return 0 if result.handled == sent else 1
