"""The benchmarks' short form: they run, agree on counts, and print their table. One output
format and one multi-FMC count keep it short: each client row is a process of its own."""

import json
import shutil

import pytest

from benchmarks.run_all import main


def test_benchmarks_run_and_report(capsys):
    assert main(["--events", "150", "--live-events", "150", "--formats", "json",
                 "--fmcs", "2", "--repeat", "2", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("stream: 150 events -> ")
    stages = {line.split()[0]: line.split()[1:] for line in out[2:-1]}
    assert set(stages) == {"decode", "decode-71", "decode+json", "emulator:cold",
                           "emulator:warm", "end-to-end:json", "scaling:2", "decorate"}
    results = json.loads(out[-1])["results"]
    assert set(results) == set(stages)
    for rate, peak, cpu, *_spread in stages.values():
        # CPU may round to 0.00 here: 150 events take less than the clock tick of /proc.
        assert float(rate.replace(",", "")) > 0 and float(peak) > 0 and float(cpu) >= 0
    # Client rows are the median of --repeat runs, with the slowest and fastest beside it.
    for name in ("end-to-end:json", "scaling:2"):
        runs = results[name]["runs_records_per_sec"]
        assert len(runs) == 2 and runs == sorted(runs)
        assert stages[name][3] == f"({runs[0]:,}-{runs[1]:,})"
    assert results["decode"]["runs_records_per_sec"] is None
    # Every record each emulator sent was handled, from both at once in the scaling row.
    assert results["scaling:2"]["records"] > results["end-to-end:json"]["records"] \
        == results["emulator:warm"]["records"] == results["emulator:cold"]["records"]


def test_only_runs_one_stage(capsys):
    assert main(["--events", "150", "--only", "decode-71"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["decode-71"]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind counts the instructions")
def test_instructions_are_counted_per_record(capsys):
    """The short form of `./run instructions`: one stage, a small stream, a positive count
    (a real connection record takes tens of thousands of instructions to decode)."""
    from benchmarks.instructions import main as count

    assert count(["--events", "30", "--stages", "decode", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("stream: 30 events -> ")
    per_record = json.loads(out[-1])["instructions_per_record"]["decode"]["this"]
    assert 1_000 < per_record < 1_000_000
