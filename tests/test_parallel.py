"""`workerProcesses`: decoding, names and formatting in worker processes give the same files
as one process, byte for byte; malformed records still reach the dead-letter file; a worker
that dies ends the run with a sentence and loses nothing (the next run resends from the
bookmark); and what cannot run in workers stays in the runner's process, saying why."""

import dataclasses
import json
import logging
import os
import signal
import threading
import time

import pytest

from estreamer import parallel
from estreamer.certs import init_certs
from estreamer.client.runner import FatalRunError
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.faults import Fault
from estreamer.emulator.server import Emulator
from estreamer.job import build_runner
from estreamer.parallel import ParallelPipeline, checked_workers
from estreamer.pipeline import Pipeline

needs_two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2,
                                     reason="workers are capped at the machine's cores")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


def settings_for(directory, port, certs, workers, *, formats=("json",), dead_letter=None,
                 max_logs=10**7):
    config = default_config("127.0.0.1", port, certs.client_pkcs12, start=0,
                            uri="relfile:///out/encore.{0}.json", log_filepath="",
                            max_logs=max_logs)
    outputter = config["handler"]["outputters"][0]
    config["handler"]["outputters"] = [
        {**outputter, "adapter": name, "stream": {**outputter["stream"],
                                                  "uri": f"relfile:///out/encore.{{0}}.{name}"}}
        for name in formats]
    config.update(workerProcesses=workers, responseTimeout=0.1)
    if dead_letter is not None:
        config["handler"]["deadLetter"] = dead_letter
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "estreamer.conf"
    path.write_text(json.dumps(config))
    return settings_from_dict(config, path)


def output_files(directory):
    """Each format's lines (the file names carry the time the file was opened)."""
    files = sorted((directory / "out").iterdir())
    assert len({p.suffix for p in files}) == len(files)  # one file each
    return {p.suffix[1:]: p.read_bytes() for p in files}


@needs_two_cores
def test_workers_write_the_same_files_as_one_process(tmp_path, certs, monkeypatch):
    """One process; two (the runner and a worker); and two where the worker may hold one
    bundle only, so that the runner's process does many bundles itself, between the
    worker's: the same bytes in every file."""
    formats = ("json", "splunk", "cef", "ecs")
    runs = {}
    with Emulator(certs.directory, rate=0, seed=11, history_size=3000,
                  bundle_records=40) as fmc:
        for name, workers, in_flight in (("one", 1, None), ("two", 2, None),
                                         ("shared", 2, 1)):
            if in_flight is not None:
                monkeypatch.setattr(parallel, "IN_FLIGHT_PER_WORKER", in_flight)
            settings = settings_for(tmp_path / name, fmc.port, certs, workers,
                                    formats=formats)
            runner = build_runner(settings, Secret(certs.password), max_retries=0)
            assert isinstance(runner.pipeline, ParallelPipeline) == (workers == 2)
            result = runner.run(stop_when_idle=1.0)
            runs[name] = (output_files(tmp_path / name), result.handled,
                          runner.pipeline.stats.written)
            if in_flight is not None:
                # Both did some: the first bundle always goes to the worker, and the
                # next one comes long before the worker can have answered it.
                assert runner.pipeline.done_here > 0
    single = runs["one"]
    assert sorted(single[0]) == sorted(formats)
    for shared in (runs["two"], runs["shared"]):
        assert shared[1:] == single[1:]
        assert sorted(shared[0]) == sorted(single[0])
        for name, data in single[0].items():
            assert shared[0][name] == data, name
    lines = [json.loads(line) for line in single[0]["json"].splitlines()]
    events = sorted((e["record_type"], e["archive_timestamp"]) for e in lines
                    if "archive_timestamp" in e)
    assert events == sorted((r.record_type, r.archive_timestamp) for r in fmc.history.events)
    # Named from metadata, in the workers as in one process.
    assert any(e.get("access_control_policy_name") for e in lines)


@needs_two_cores
def test_workers_rotate_files_where_one_process_does(tmp_path, certs):
    """Files of 250 lines: the workers' blocks are cut where a file ends, so the files hold
    the same lines as one process's, file by file."""
    contents = {}
    with Emulator(certs.directory, rate=0, seed=12, history_size=1500,
                  bundle_records=90) as fmc:
        for workers in (1, 2):
            settings = settings_for(tmp_path / f"w{workers}", fmc.port, certs, workers,
                                    formats=("json", "splunk"), max_logs=250)
            build_runner(settings, Secret(certs.password), max_retries=0).run(
                stop_when_idle=1.0)
            files = sorted((tmp_path / f"w{workers}" / "out").iterdir())
            contents[workers] = {suffix: [p.read_bytes() for p in files if p.suffix == suffix]
                                 for suffix in (".json", ".splunk")}
    assert contents[2] == contents[1]
    json_files = contents[1][".json"]
    assert len(json_files) > 4 and all(f.count(b"\n") == 250 for f in json_files[:-1])


@needs_two_cores
def test_a_malformed_record_reaches_the_dead_letter_file_from_a_worker(tmp_path, certs, caplog):
    caplog.set_level(logging.INFO)
    with Emulator(certs.directory, rate=0, seed=5, history_size=80, bundle_records=20,
                  faults=[Fault("corrupt-record", 2)]) as fmc:
        settings = settings_for(tmp_path, fmc.port, certs, 2,
                                dead_letter="relfile:///dl/{host}.log")
        runner = build_runner(settings, Secret(certs.password), max_retries=0)
        runner.run(stop_when_idle=0.5)
    assert isinstance(runner.pipeline, ParallelPipeline)
    lines = [json.loads(line) for line in (tmp_path / "dl" / "127.0.0.1.log").read_text()
             .splitlines()]
    assert [(x["record_type"], x["error"][:27]) for x in lines] == [
        (98, "User does not fit its layou")]
    assert runner.pipeline.stats.malformed == 1
    faults = [r.getMessage() for r in caplog.records if r.getMessage().startswith("offset ")]
    assert faults == [f"offset {lines[0]['offset']}: record type 98: {lines[0]['error']}"]
    events = [json.loads(x) for x in output_files(tmp_path)["json"].splitlines()]
    assert sum("archive_timestamp" in e for e in events) == len(fmc.history.events)


@needs_two_cores
def test_a_worker_that_dies_ends_the_run_and_the_next_run_loses_nothing(tmp_path, certs):
    # The first session sends slowly (1 MB/s), so the worker dies mid-stream.
    with Emulator(certs.directory, rate=0, seed=7, history_size=6000, bundle_records=20,
                  keepalive_interval=0.2, faults=[Fault("slow", 1, value=1e6)]) as fmc:
        settings = settings_for(tmp_path, fmc.port, certs, 2)
        runner = build_runner(settings, Secret(certs.password), max_retries=0,
                              commit_interval=0.05)
        victim = runner.pipeline._processes[0]
        killed = []

        def kill_mid_stream():
            deadline = time.monotonic() + 30
            while runner.pipeline.stats.received < 500 and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(runner.pipeline.stats.received)

        killer = threading.Thread(target=kill_mid_stream)
        killer.start()
        with pytest.raises(FatalRunError, match=r"worker process 0 \(\d+\) exited with -9"):
            runner.run(stop_when_idle=1.0)
        killer.join()
        assert killed
        # The next run (one process) resumes from the bookmark and cuts the file back to it.
        settings = settings_for(tmp_path, fmc.port, certs, 1)
        settings = dataclasses.replace(settings, start=2)
        build_runner(settings, Secret(certs.password), max_retries=0).run(stop_when_idle=1.0)
    lines = [json.loads(x) for path in sorted((tmp_path / "out").iterdir())
             for x in path.read_text().splitlines()]  # the second run opened a new file
    events = [(e["record_type"], e["archive_timestamp"]) for e in lines
              if "archive_timestamp" in e]
    assert sorted(events) == sorted((r.record_type, r.archive_timestamp)
                                    for r in fmc.history.events)


def test_a_per_record_callback_keeps_the_work_in_one_process(tmp_path, certs, caplog):
    with Emulator(certs.directory, rate=0, seed=5, history_size=20) as fmc:
        settings = settings_for(tmp_path, fmc.port, certs, 2)
        seen = []
        runner = build_runner(settings, Secret(certs.password), max_retries=0,
                              on_record=seen.append)
        runner.run(stop_when_idle=0.5)
    assert type(runner.pipeline) is Pipeline and seen
    assert "decoding in this process (a per-record callback is set)" in caplog.text


def test_never_more_workers_than_cores():
    assert checked_workers(4, 2) == 2
    assert checked_workers(1, 8) == 1
    assert checked_workers(3, None) == 1


@needs_two_cores
def test_with_several_fmcs_events_from_workers_say_which_fmc(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=3, history_size=200) as one, \
            Emulator(certs.directory, rate=0, seed=4, history_size=200) as two:
        config = default_config("127.0.0.1", one.port, certs.client_pkcs12, start=0,
                                uri="relfile:///out/{host}-{port}/encore.{0}.json",
                                log_filepath="")
        servers = config["subscription"]["servers"]
        servers.append({**servers[0], "port": two.port})
        config.update(workerProcesses=2, responseTimeout=0.1)
        path = tmp_path / "estreamer.conf"
        path.write_text(json.dumps(config))
        settings = settings_from_dict(config, path)
        for server in settings.servers:
            runner = build_runner(settings, Secret(certs.password), max_retries=0,
                                  server=server)
            assert isinstance(runner.pipeline, ParallelPipeline)
            runner.run(stop_when_idle=0.5)
    for port in (one.port, two.port):
        lines = [json.loads(x) for p in (tmp_path / "out" / f"127.0.0.1-{port}").iterdir()
                 for x in p.read_text().splitlines()]
        assert lines and {e["fmc"] for e in lines} == {f"127.0.0.1:{port}"}


def test_a_worker_pipe_never_deadlocks_when_both_directions_are_full():
    """The runner has no reader thread: while its send cannot go on, it reads the worker's
    answers. Tiny socket buffers and a worker that answers each message with a megabyte
    before reading the next would block a plain sendall for ever."""
    import socket
    from multiprocessing.connection import Connection

    mine, theirs = socket.socketpair()
    for end in (mine, theirs):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    worker = Connection(theirs.detach())

    def echo_big():
        while (message := worker.recv()) != "stop":
            worker.send((message[0], bytes([message[0] % 256]) * (1 << 20)))
        worker.close()

    thread = threading.Thread(target=echo_big, daemon=True)
    thread.start()
    pipe = parallel.WorkerPipe(mine)
    for n in range(20):
        pipe.send((n, b"x" * 200_000))  # nothing read in between, as a busy runner does
    answers = [pipe.get(timeout=10) for _ in range(20)]
    pipe.send("stop")
    thread.join(10)
    assert [a[0] for a in answers] == list(range(20))
    assert all(a[1] == bytes([a[0]]) * (1 << 20) for a in answers)
    # The worker closed its end: the next answer is why none will come, and a send fails.
    assert isinstance(pipe.get(timeout=10), EOFError)
    assert isinstance(pipe.get(), EOFError)  # and again, at once, however often asked
    with pytest.raises(OSError):
        for _ in range(100):
            pipe.send((0, b"x" * 100_000))
    pipe.close()


def test_a_worker_pipe_reads_the_long_length_form_and_split_frames():
    """multiprocessing's framing, which the worker side uses: a 4-byte big-endian length,
    or -1 and an 8-byte one; frames may arrive a byte at a time."""
    import pickle
    import socket
    import struct

    mine, theirs = socket.socketpair()
    pipe = parallel.WorkerPipe(mine)
    short, long = pickle.dumps(("short", 1)), pickle.dumps(("long", 2))
    wire = struct.pack("!i", len(short)) + short + struct.pack("!iQ", -1, len(long)) + long
    for n in range(len(wire)):
        theirs.sendall(wire[n:n + 1])
        pipe.pump()
    assert pipe.ready()
    assert pipe.get() == ("short", 1)
    assert pipe.get() == ("long", 2)
    assert not pipe.ready()
    assert isinstance(pipe.get(timeout=0.05), TimeoutError)
    mine.close()
    theirs.close()
