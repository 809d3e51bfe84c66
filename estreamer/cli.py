"""Command line: `estreamer decode | run | demo | emulate | certs`."""

import argparse
import logging
import sys

from estreamer import __version__

LOG_FORMAT = "%(asctime)s %(name)-12s %(levelname)-8s %(message)s"  # eNcore's default


def setup_logging(level: str = "INFO", filepath: str | None = None, stdout: bool = True) -> None:
    handlers: list[logging.Handler] = []
    if stdout:
        handlers.append(logging.StreamHandler(sys.stderr))
    if filepath:
        handlers.append(logging.FileHandler(filepath))
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, handlers=handlers, force=True)


def _decode(args: argparse.Namespace) -> int:
    from estreamer.decode import run_decode

    return run_decode(args.file, args.format, args.hex)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="estreamer", description="Cisco Firepower eStreamer client and FMC emulator."
    )
    parser.add_argument("--version", action="version", version=f"estreamer {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decode = commands.add_parser(
        "decode", help="decode a captured eStreamer byte stream to one line per record"
    )
    decode.add_argument("file", help="capture file, or - for stdin")
    decode.add_argument("--format", default="json", choices=["json", "splunk"])
    decode.add_argument("--hex", action="store_true", help="the input is a hex dump")
    decode.set_defaults(handler=_decode)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `estreamer decode x | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
