"""Long-running coverage-guided fuzzing of the decoder with atheris (libFuzzer).

    ./run fuzz-atheris [SECONDS]      # installs atheris into .venv on first use

atheris is not in requirements-dev.txt: it needs a clang-built wheel that does not exist for
every platform and Python, and the suite's hypothesis tests cover the same properties in
short form. What this checks, on any input: the stream decoder (framing, messages, bundles,
records, blocks, strings) and `decode_record` raise nothing but the project's ProtocolError,
and every decoded record turns into a dict. Crashes are written by libFuzzer as
crash-<sha1> files in the current directory; replay one with
`python fuzz/fuzz_decoder.py crash-<sha1>`. The run starts from seeds made by
fuzz/make_corpus.py (real records and bundles from the emulator), so it begins inside every
layout instead of spending its time finding a valid record header."""

import sys

import atheris

with atheris.instrument_imports():
    from estreamer.errors import ProtocolError
    from estreamer.protocol import layout
    from estreamer.protocol.records import Record, decode_record
    from estreamer.protocol.stream import StreamDecoder


def instrument_generated_decoders() -> int:
    """Each layout's decoder is Python source generated and exec'd at import (see
    layout.CompiledLayout), which atheris's import hook never sees: without this the
    fuzzer is blind inside every record and block layout. Returns how many it instrumented."""
    done = 0
    for compiled in list(getattr(layout, "_COMPILED", {}).values()):
        for name in ("_decode", "decode_block"):
            function = getattr(compiled, name, None)
            if getattr(function, "__code__", None) is not None:
                atheris.instrument_func(function)
                done += 1
    return done


def test_one_input(data: bytes) -> None:
    if not data:
        return
    # First byte picks the entry point, so one corpus reaches both.
    body = data[1:]
    if data[0] & 1:
        record = decode_record(body)
        record.to_dict()
        return
    try:
        for event in StreamDecoder(max_body=1 << 20).feed(body):
            if isinstance(event, Record):
                event.to_dict()
    except ProtocolError:
        pass


def main() -> None:
    print(f"instrumented {instrument_generated_decoders()} generated layout decoders",
          file=sys.stderr)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
