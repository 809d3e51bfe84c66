"""Soak: the real client, as the user runs it (`python -m estreamer run -c CONF`, a separate
process), against the emulator while random faults hit both sides, then what came out in
the JSON files is compared with what the emulator holds.

Faults (seeded, so a failing run can be replayed with its seed):
- per session, from the emulator: a cut inside a bundle, inside a message header, inside a
  TLS record; an Error message; a silent server; a slow server; a restart of the emulator;
  records of an unknown type or with broken strings in a bundle;
- from the harness, at random moments: SIGKILL of the client (then a fresh start), and a
  restart of the emulator (port closed for a random while).

What is compared: events, i.e. records with an archive timestamp. Metadata is resent at the
start of every connection by design (FMCs do the same; clients need the names), so the
files hold it several times and it is not counted. An event's identity is its JSON line.
`lost` is the number of the emulator's events with no line; `duplicated` is the number of
lines beyond the first for an event.

Why SIGKILL does not duplicate: records written after the last commit are not covered by
the bookmark, so the FMC resends them after the restart. The commit therefore also saves
each file output's position, and the next start cuts the files back to it before the
resent records arrive (estreamer.client.recovery). Without that, every kill would leave up
to a second of events in the files twice, and this test would count them.

Short form in the default suite (about 12 s). Long form: `./run soak [SECONDS]`, or
ESTREAMER_SOAK_SECONDS=600 (ESTREAMER_SOAK_SEED picks the seed)."""

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from estreamer.certs import init_certs
from estreamer.config import PASSWORD_ENV, default_config
from estreamer.emulator.faults import Fault
from estreamer.emulator.server import Emulator

log = logging.getLogger("Soak")

SECONDS = float(os.environ.get("ESTREAMER_SOAK_SECONDS", "0")) or 10.0
MIN_ACTIONS = 3  # kills + emulator restarts the harness makes, whatever the machine's speed
SEED = int(os.environ.get("ESTREAMER_SOAK_SEED", "0")) or random.SystemRandom().randrange(1 << 30)
CATCH_UP = 40.0  # after the faults stop, seconds the client has to deliver everything

SESSION_FAULTS = (
    ("close", None), ("close-header", None), ("close-tls", None), ("error", None),
    ("silent", None), ("slow", 150_000.0), ("restart", 0.3), ("unknown-record", None),
    ("corrupt-record", None),
)


@dataclass
class Report:
    seed: int
    seconds: float
    events: int = 0
    lines: int = 0
    lost: int = 0
    duplicated: int = 0
    kills: int = 0
    restarts: int = 0
    session_faults: Counter = field(default_factory=Counter)
    exits: list = field(default_factory=list)  # client exits nobody asked for

    @property
    def faults(self) -> int:
        return self.kills + self.restarts + sum(self.session_faults.values())

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.session_faults.items()))
        return (f"soak seed={self.seed} {self.seconds:.0f}s: N={self.faults} faults "
                f"(SIGKILL {self.kills}, harness restarts {self.restarts}, {kinds}); "
                f"events={self.events} lines={self.lines} lost={self.lost} "
                f"duplicated={self.duplicated}")


def session_faults(rng: random.Random, sessions: int = 2000) -> list[Fault]:
    faults = []
    for session in range(1, sessions + 1):
        if rng.random() < 0.8:
            kind, value = rng.choice(SESSION_FAULTS)
            faults.append(Fault(kind, rng.randint(1, 6), session, value=value))
    return faults


def fired(fmc: Emulator) -> Counter:
    """Faults that actually happened, by kind (a fault for a late bundle may never fire)."""
    counts: Counter = Counter()
    injected = {(e.session_id, e.record_type) for e in fmc.ledger.entries() if e.injected}
    for session in fmc.sessions:
        for fault in session.faults:
            if fault.kind in ("unknown-record", "corrupt-record"):
                hit = any(s == session.session_number for s, _ in injected)
            elif fault.kind == "silent":
                hit = session.silent
            elif fault.kind == "slow":
                hit = session.send_rate is not None
            else:
                hit = (session.close_reason or "").startswith("fault")
            counts[fault.kind] += hit
    return +counts


def start_client(conf: Path, password: str, log_file: Path) -> subprocess.Popen:
    env = {**os.environ, PASSWORD_ENV: password}
    with open(log_file, "ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "estreamer", "run", "-c", str(conf)],
                                cwd=conf.parent, env=env, stdout=sink, stderr=subprocess.STDOUT)


def event_lines(out: Path) -> list[str]:
    lines = []
    for path in sorted(out.glob("*.json")):
        for line in path.read_text().splitlines():
            if line and '"archive_timestamp"' in line:
                lines.append(line)
    return lines


def soak(workdir: Path, seconds: float, seed: int) -> Report:
    rng = random.Random(seed)
    report = Report(seed, seconds)
    certs = init_certs(workdir / "certs", client_cn="127.0.0.1")
    fmc = Emulator(certs.directory, rate=150, seed=seed, history_size=1500, bundle_records=20,
                   keepalive_interval=0.2, faults=session_faults(rng))
    fmc.start()
    config = default_config("127.0.0.1", fmc.port, certs.client_pkcs12,
                            uri="relfile:///out/encore.{0}.json", log_filepath="client.log",
                            max_logs=400)
    config["responseTimeout"] = 0.02
    # Short timings (the documented keys), so a fault costs a fraction of a second and a
    # short run still gets many in: a silent server is dropped after 0.6 s, and the waits
    # before reconnecting stay below 0.5 s.
    config["idleTimeout"] = 0.6
    config["reconnectDelay"] = 0.05
    config["maxReconnectDelay"] = 0.5
    config["logging"]["stdOut"] = False
    conf = workdir / "estreamer.conf"
    conf.write_text(json.dumps(config))
    console = workdir / "client.console"
    client = start_client(conf, certs.password, console)
    try:
        deadline = time.monotonic() + seconds
        # Go on past the deadline until a few client-side faults happened (a slow machine
        # gets fewer rounds in the same time), within a hard cap.
        hard_stop = deadline + 2 * seconds
        while (now := time.monotonic()) < deadline or (
            report.kills + report.restarts < MIN_ACTIONS and now < hard_stop
        ):
            time.sleep(min(rng.uniform(0.2, 0.8), max(0.0, max(deadline, now + 0.5) - now)))
            if client.poll() is not None:
                report.exits.append(client.returncode)
                client = start_client(conf, certs.password, console)
            action = rng.random()
            if action < 0.45:
                client.send_signal(signal.SIGKILL)
                client.wait()
                report.kills += 1
                client = start_client(conf, certs.password, console)
            elif action < 0.65:
                fmc.restart(rng.uniform(0.0, 0.5))
                report.restarts += 1
        # Quiet now: no new faults, no new events; the client must deliver the rest.
        fmc.faults = ()
        fmc.history.rate = 0
        expected = len(fmc.history.events)
        until = time.monotonic() + CATCH_UP
        while time.monotonic() < until and len(set(event_lines(workdir / "out"))) < expected:
            if client.poll() is not None:
                report.exits.append(client.returncode)
                client = start_client(conf, certs.password, console)
            time.sleep(0.2)
        client.send_signal(signal.SIGTERM)
        client.wait(timeout=15)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        fmc.stop()
    lines = event_lines(workdir / "out")
    by_event = Counter(lines)
    wanted = Counter((r.record_type, r.archive_timestamp) for r in fmc.history.events)
    got = Counter()
    for line in by_event:
        record = json.loads(line)
        got[(record["record_type"], record["archive_timestamp"])] += 1
    report.events = len(fmc.history.events)
    report.lines = len(lines)
    report.lost = sum((wanted - got).values())
    report.duplicated = sum(n - 1 for n in by_event.values())
    report.session_faults = fired(fmc)
    unexpected = +(got - wanted)
    assert not unexpected, f"events the emulator never had: {dict(unexpected)}"
    return report


def test_soak_nothing_lost_nothing_duplicated(tmp_path, capsys):
    report = soak(tmp_path, SECONDS, SEED)
    summary = report.line()
    log.warning("%s", summary)
    with capsys.disabled():  # shown with or without -s
        print(f"\n{summary}")
    detail = f"{summary}; see {tmp_path}/client.log"
    assert report.lost == 0 and report.duplicated == 0, detail
    assert report.exits == [], f"the client exited by itself {report.exits}: {detail}"
    assert report.kills + report.restarts >= 1 and report.faults >= 3, detail
    assert report.events > 1500, detail


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_between_commits_leaves_each_event_once(tmp_path):
    """The case the output positions exist for, on its own: kill the client while it
    writes, many times, with no other fault; every event is in the files once."""
    report = Report(0, 0)
    certs = init_certs(tmp_path / "certs", client_cn="127.0.0.1")
    with Emulator(certs.directory, rate=400, seed=3, history_size=300, bundle_records=10,
                  keepalive_interval=0.2) as fmc:
        config = default_config("127.0.0.1", fmc.port, certs.client_pkcs12,
                                uri="relfile:///out/encore.{0}.json", log_filepath="client.log")
        config["responseTimeout"] = 0.05
        config["logging"]["stdOut"] = False
        conf = tmp_path / "estreamer.conf"
        conf.write_text(json.dumps(config))
        for pause in (1.2, 0.9, 1.5):
            client = start_client(conf, certs.password, tmp_path / "console")
            time.sleep(pause)
            client.send_signal(signal.SIGKILL)
            client.wait()
            report.kills += 1
        fmc.history.rate = 0
        client = start_client(conf, certs.password, tmp_path / "console")
        until = time.monotonic() + 20
        while time.monotonic() < until and \
                len(set(event_lines(tmp_path / "out"))) < len(fmc.history.events):
            time.sleep(0.2)
        client.send_signal(signal.SIGTERM)
        client.wait(timeout=15)
    lines = event_lines(tmp_path / "out")
    assert len(lines) == len(set(lines)) == len(fmc.history.events)
    saved = json.loads((tmp_path / f"127.0.0.1-{fmc.port}_bookmark.dat").read_text())
    assert set(saved["outputs"]) == {str(tmp_path / "out" / "encore.{0}.json")}
