"""End to end: the client streams from the emulator over real TLS into two outputs at once,
each with its own format (JSON lines to a file, Splunk key=value over syslog/TCP), and both
receive every record the emulator sent, exactly once."""

import json
import re

from estreamer.certs import init_certs
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.server import Emulator
from estreamer.job import build_runner
from tests.test_outputs_network import TcpSyslogServer, bodies


def test_two_outputs_with_different_formats_get_every_record_once(tmp_path):
    certs = init_certs(tmp_path / "certs", client_cn="127.0.0.1")
    syslog = TcpSyslogServer()
    with Emulator(certs.directory, rate=0, seed=5, history_size=200) as emulator:
        config = default_config("127.0.0.1", emulator.port, certs.client_pkcs12,
                                uri="relfile:///out/encore.{0}.json", start=0, log_filepath="")
        config["handler"]["outputters"].append({
            "adapter": "splunk", "enabled": True,
            "stream": {"uri": f"syslog+tcp://127.0.0.1:{syslog.port}",
                       "options": {"queueSize": 50}}})
        config["responseTimeout"] = 0.2
        path = tmp_path / "estreamer.conf"
        path.write_text(json.dumps(config))
        settings = settings_from_dict(config, path)
        written = []
        runner = build_runner(settings, Secret(certs.password), on_record=written.append,
                              max_retries=0, commit_interval=0.0)
        runner.run(stop_when_idle=0.5)
    sent = emulator.ledger.digests()
    assert [r.digest for r in written] == sent
    lines = [json.loads(line) for f in sorted((tmp_path / "out").glob("*.json"))
             for line in f.read_text().splitlines()]
    assert [line["record_type"] for line in lines] == [r.record_type for r in written]
    kv = bodies(syslog.wait_for(len(sent)))
    syslog.close()
    assert len(kv) == len(sent)
    assert [int(re.match(rb"rec_type=(\d+) ", line).group(1)) for line in kv] == [
        r.record_type for r in written]
    assert any(line.startswith(b"rec_type=400 event_sec=") and b" msg=" in line for line in kv)
