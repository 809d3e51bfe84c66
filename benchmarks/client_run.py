"""One client run for the benchmarks, in a process of its own so that its peak RSS and CPU
time are the client's alone (not the benchmark's streams, not the emulator's work):

    python -m benchmarks.client_run CONFIG RECORDS...   (password: ESTREAMER_PKCS12_PASSWORD)

Every FMC of CONFIG at once, one runner thread each as `estreamer run` has them, each until
it has handled the RECORDS given for it (the whole history its emulator sends), or has been
idle for IDLE seconds (then the count falls short, and the benchmark says so). Prints one
JSON line: records handled, seconds from the first record to the last (over all FMCs), CPU
seconds of the run and peak RSS in MiB, both counting the client's worker processes too
(`workerProcesses`): CPU once they are reaped, memory as the largest sum sampled."""

import contextlib
import json
import logging
import os
import resource
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

IDLE = 5.0


def main(argv: list[str]) -> int:
    from estreamer.config import load_config, resolve_password
    from estreamer.gctune import tune_for_streaming
    from estreamer.job import build_runner

    settings = load_config(argv[0])
    expected = [int(n) for n in argv[1:]]
    logging.disable(logging.INFO)
    tune_for_streaming()  # as `estreamer run` does
    # No per-record callback: it would keep the work in this process (see estreamer.job).
    runners = [build_runner(settings, resolve_password(settings, server), max_retries=0,
                            server=server)
               for server in settings.servers]
    results = []
    # Stopping at the count, not after an idle spell, keeps waiting out of the CPU time.
    threads = [threading.Thread(target=lambda r=runner, n=n: results.append(
        r.run(max_records=n, stop_when_idle=IDLE)))
        for runner, n in zip(runners, expected, strict=True)]
    cpu = _cpu_seconds()
    own = _cpu_seconds(resource.RUSAGE_SELF)
    sampler = _TreeRss()
    sampler.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sampler.stop()
    cpu = _cpu_seconds() - cpu
    own = _cpu_seconds(resource.RUSAGE_SELF) - own
    if len(results) != len(runners):
        return 1  # a runner raised: its thread printed why
    seen = [r for r in runners if r.first_record_at is not None]
    print(json.dumps({
        "records": sum(r.handled for r in results),
        "seconds": (max(r.last_record_at for r in seen) - min(r.first_record_at for r in seen)
                    if seen else 0.0),
        "cpu_seconds": cpu,
        "cpu_seconds_runner": own,  # the runner's process alone (the rest: its workers)
        "peak_rss_mib": max(_peak_rss_mib(), sampler.peak_mib),
    }))
    return 0


def _peak_rss_mib() -> float:
    """This process's peak RSS. On Linux ru_maxrss would not do: it survives fork and exec,
    so a child starts with its parent's peak (the benchmark's, with its streams in memory);
    VmHWM belongs to the memory map that exec made fresh."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds(*whose: int) -> float:
    total = 0.0
    for who in whose or (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class _TreeRss(threading.Thread):
    """The largest RSS of this process plus its children seen at 10 samples a second
    (Linux; elsewhere nothing is sampled). Short-lived peaks can slip between samples; the
    process's own VmHWM covers its part exactly."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mib = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            pids = [str(os.getpid())]
            for tasks in Path("/proc/self/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    pids += tasks.read_text().split()
            self.peak_mib = max(self.peak_mib, sum(_rss_mib(pid) for pid in pids))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _rss_mib(pid: str) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
