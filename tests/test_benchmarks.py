"""The benchmarks' short form: they run, agree on counts, and print their table."""

import json

from benchmarks.run_all import main


def test_benchmarks_run_and_report(capsys):
    assert main(["--events", "150", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("stream: 150 events -> ")
    stages = {line.split()[0]: line.split()[1:] for line in out[2:-1]}
    assert set(stages) == {"decode", "decode-71", "decode+json", "decorate", "end-to-end"}
    assert set(json.loads(out[-1])["results"]) == set(stages)
    for rate, peak in stages.values():
        assert float(rate.replace(",", "")) > 0 and float(peak) > 0
