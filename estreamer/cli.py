"""Command line: `estreamer decode | run | test | status | host | demo | emulate | certs`."""

import argparse
import logging
import sys

from estreamer import __version__
from estreamer.errors import EstreamerError
from estreamer.formats import FORMATS
from estreamer.gctune import tune_for_streaming

LOG_FORMAT = "%(asctime)s %(name)-12s %(levelname)-8s %(message)s"  # eNcore's default


def setup_logging(level: str = "INFO", filepath: str | None = None, stdout: bool = True,
                  fmt: str = LOG_FORMAT, json_lines: bool = False) -> None:
    """Log at `level` (eNcore's names, FATAL … TRACE) to stderr and/or `filepath`, as text
    in `fmt` or, with `json_lines` or `fmt` "json", one JSON object per line."""
    from estreamer.config import LOG_LEVELS
    from estreamer.logformat import JSON_FORMAT, JsonFormatter, install_level_names

    install_level_names()
    handlers: list[logging.Handler] = []
    if stdout:
        handlers.append(logging.StreamHandler(sys.stderr))
    if filepath:
        handlers.append(logging.FileHandler(filepath))
    number = LOG_LEVELS.get(level.upper(), logging.INFO)
    json_lines = json_lines or fmt.strip().lower() == JSON_FORMAT
    logging.basicConfig(level=number, format=LOG_FORMAT if json_lines else fmt,
                        handlers=handlers, force=True)
    if json_lines:
        for handler in handlers:
            handler.setFormatter(JsonFormatter())


def log_level(value: str) -> str:
    """`--log-level`: one of eNcore's names, any case."""
    from estreamer.config import LOG_LEVELS

    name = value.strip().upper()
    if name not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a level: FATAL, ERROR, WARNING, INFO, DEBUG, VERBOSE or TRACE")
    return name


def _decode(args: argparse.Namespace) -> int:
    from estreamer.decode import run_decode

    tune_for_streaming()
    return run_decode(args.file, args.format, args.hex, args.max_message_bytes)


def _run(args: argparse.Namespace) -> int:
    from estreamer.commands import run_command

    tune_for_streaming()
    return run_command(args.config, args.log_level_given, metrics=args.metrics,
                       log_json=args.log_json)


def _status(args: argparse.Namespace) -> int:
    from estreamer.commands import status_command

    if args.log_level_given is None:
        setup_logging("WARNING", json_lines=args.log_json)
    return status_command(args.config)


def _test(args: argparse.Namespace) -> int:
    from estreamer.diagnose import diagnose_command

    if args.log_level_given is None:  # the checks speak for themselves; library INFO is noise
        setup_logging("WARNING", json_lines=args.log_json)
    return diagnose_command(args.config, args.verbose, args.seconds)


def _demo(args: argparse.Namespace) -> int:
    from estreamer.commands import demo_command

    tune_for_streaming()
    return demo_command(args.follow, args.history, args.rate, args.show)


def _emulate(args: argparse.Namespace) -> int:
    from estreamer.commands import emulate_command

    return emulate_command(args.dir, args.listen, args.rate, args.seed, args.history, args.fault)


def _records(args: argparse.Namespace) -> int:
    from estreamer.coverage import records_command

    return records_command()


def _host(args: argparse.Namespace) -> int:
    from estreamer.client.hosts import host_command

    return host_command(args.config, args.hosts, args.format, notes=not args.no_notes,
                        banners=not args.no_banners, quiet=args.timeout)


def _certs_init(args: argparse.Namespace) -> int:
    from estreamer.commands import certs_init_command

    return certs_init_command(args.dir, args.client_cn, args.server_cn, args.password, args.force)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="estreamer", description="Cisco Firepower eStreamer client and FMC emulator."
    )
    parser.add_argument("--version", action="version", version=f"estreamer {__version__}")
    parser.add_argument("--log-level", dest="log_level_given", default=None, type=log_level,
                        metavar="LEVEL",
                        help="FATAL, ERROR, WARNING, INFO, DEBUG, VERBOSE (every message "
                             "exchanged, in hex) or TRACE (also every record) (default: the "
                             "config's logging.level, or INFO)")
    parser.add_argument("--log-json", action="store_true",
                        help="log one JSON object per line (as logging.format \"json\")")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decode = commands.add_parser(
        "decode", help="decode a captured eStreamer byte stream to one line per record"
    )
    decode.add_argument("file", help="capture file, or - for stdin")
    decode.add_argument("--format", default="json", choices=sorted(FORMATS))
    decode.add_argument("--hex", action="store_true", help="the input is a hex dump")
    decode.add_argument("--max-message-bytes", type=int, default=None,
                        help="refuse messages with a larger body (default 16 MiB)")
    decode.set_defaults(handler=_decode)

    run = commands.add_parser("run", help="stream events from the FMC in CONFIG to its outputs")
    run.add_argument("-c", "--config", default="estreamer.conf",
                     help="eNcore-style estreamer.conf (default: ./estreamer.conf)")
    run.add_argument("--metrics", metavar="[ADDRESS]:PORT", default=None,
                     help="serve Prometheus metrics there, e.g. :9102 (opt-in)")
    run.set_defaults(handler=_run)

    status = commands.add_parser(
        "status", help="whether the client of CONFIG runs, its bookmark and its last error"
    )
    status.add_argument("-c", "--config", default="estreamer.conf",
                        help="eNcore-style estreamer.conf (default: ./estreamer.conf)")
    status.set_defaults(handler=_status)

    test = commands.add_parser(
        "test", help="check config, certificate, network, TLS and eStreamer; name the fault"
    )
    test.add_argument("-c", "--config", default="estreamer.conf",
                      help="eNcore-style estreamer.conf (default: ./estreamer.conf)")
    test.add_argument("--verbose", action="store_true",
                      help="print every message exchanged as annotated hex")
    test.add_argument("--seconds", type=float, default=5.0,
                      help="how long to listen for records (default 5)")
    test.set_defaults(handler=_test)

    demo = commands.add_parser(
        "demo", help="run the client against the bundled FMC emulator on loopback"
    )
    demo.add_argument("--follow", action="store_true",
                      help="keep streaming live events until Ctrl-C")
    demo.add_argument("--history", type=int, default=2000, help="events the emulator holds")
    demo.add_argument("--rate", type=float, default=20.0, help="live events/sec with --follow")
    demo.add_argument("--show", type=int, default=4,
                      help="event families to print one event of")
    demo.set_defaults(handler=_demo)

    emulate = commands.add_parser("emulate", help="run the FMC emulator (a TLS eStreamer server)")
    emulate.add_argument("--dir", required=True,
                         help="certificate directory (created with fresh certificates if empty)")
    emulate.add_argument("--listen", default="127.0.0.1:8302", help="HOST:PORT")
    emulate.add_argument("--rate", type=float, default=1.0, help="live events per second")
    emulate.add_argument("--seed", type=int, default=0, help="makes the history reproducible")
    emulate.add_argument("--history", type=int, default=500, help="events in the history")
    emulate.add_argument("--fault", action="append", default=[],
                         help="inject a fault, e.g. close@3 (see estreamer/emulator/faults.py)")
    emulate.set_defaults(handler=_emulate)

    records = commands.add_parser(
        "records", help="the record types this client decodes, with their blocks"
    )
    records.set_defaults(handler=_records)

    host = commands.add_parser(
        "host", help="print the FMC's host profiles of an address, network or range"
    )
    host.add_argument("-c", "--config", default="estreamer.conf",
                      help="eNcore-style estreamer.conf (default: ./estreamer.conf)")
    host.add_argument("hosts", help="10.1.2.3, 10.1.2.0/24 or 10.1.2.3-10.1.2.9")
    host.add_argument("--format", default="json", choices=["json", "splunk", "cef", "ecs"])
    host.add_argument("--no-notes", action="store_true", help="do not ask for host notes")
    host.add_argument("--no-banners", action="store_true", help="do not ask for banners")
    host.add_argument("--timeout", type=float, default=10.0,
                      help="seconds of silence that end the answer (default 10)")
    host.set_defaults(handler=_host)

    certs = commands.add_parser("certs", help="certificates like FMC's eStreamer 'Create Client'")
    certs_commands = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    init = certs_commands.add_parser("init", help="a CA, a server cert and a client PKCS#12")
    init.add_argument("dir")
    init.add_argument("--client-cn", default="127.0.0.1",
                      help="the client address the FMC sees (post-NAT)")
    init.add_argument("--server-cn", default="127.0.0.1")
    init.add_argument("--password", default=None,
                      help="PKCS#12 password (default: generated, written to client.password)")
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(handler=_certs_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level_given or "INFO", json_lines=args.log_json)
    try:
        return args.handler(args)
    except EstreamerError as exc:
        logging.getLogger("estreamer").error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `estreamer decode x | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
