"""Decode, decorate and format in worker processes (`workerProcesses` above 1).

One FMC's stream is one TLS connection, so the connection, the bookmark, the outputs and
every commit stay in the runner's process; what costs CPU per record (decoding, names from
metadata, formatting) moves to worker processes, each a Python of its own with its own GIL.

The runner's process reads each record's header only (type, archive timestamp), drops the
records the FMC resent, moves the in-memory bookmark, and hands each bundle's records to the
next worker in turn. Results are taken back strictly in the order the bundles came, so the
outputs get the same lines in the same order as without workers. A commit first waits for
every bundle in flight: the saved bookmark never passes a line the outputs have not taken.

Metadata (names for ids) is learnt in stream order by every worker: a bundle's metadata
records are sent to the other workers before any later bundle, and each worker reads its
pipe in order. The runner's process decodes the metadata records too (there are few), for
the metadata cache it saves with each commit, and the records a worker could not decode
(for the dead-letter file and the decode-error counts).

`workerProcesses: N` is N processes doing this work: N-1 workers and the runner's own. The
runner's first job is the stream (TLS, framing, bookkeeping, writing), so it takes a bundle
itself only when every worker already has its fill in flight and the oldest answer is not
back: rather than wait, it works. The split settles by itself at whatever the machine
allows; N processes on N cores never have more runnable processes than cores, which on a
busy machine costs more than the work it spreads.

A worker that dies takes the run down with a sentence saying so; the bookmark stays at the
last commit, so the next run (after a crash, cut back to it) resends what was in flight."""

from __future__ import annotations

import logging
import pickle
import select
import socket
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from estreamer.client.runner import FatalRunError
from estreamer.config import RecordFilter
from estreamer.pipeline import Decorator, Pipeline, RecordSelector, decode_error_kind
from estreamer.protocol.records import Record, decode_record, record_header
from estreamer.protocol.tables import RECORDS

log = logging.getLogger("Workers")

METADATA_TYPES = frozenset(t for t, layout in RECORDS.items() if layout.category == "metadata")
IN_FLIGHT_PER_WORKER = 4  # bundles a worker may hold before the runner waits for it
PIPE_BUFFER = 4 << 20  # bytes of socket buffer asked for each way (IN_FLIGHT_PER_WORKER answers)
READY_TIMEOUT = 60.0  # seconds a new worker may take to start


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to turn records into lines, all of it picklable: the formats of
    the outputs (in sink order, each once), the record filter, the metadata cache file to
    start from, and the FMC label events carry when several FMCs are configured."""

    formats: tuple[str, ...]
    record_filter: RecordFilter
    metadata_file: Path | None
    fmc_label: str | None


# -- the worker side ---------------------------------------------------------------------


def _work(conn: Connection) -> None:
    """A worker's whole life: read its WorkerSpec, then ("learn", raws) and ("work", raws,
    offsets) messages in order, answering each "work" with (lines by format, written,
    filtered, bad indices, notes), until ("stop",) or the runner's end of the pipe."""
    from estreamer.decorate import Decorator
    from estreamer.formats import get_formatter
    from estreamer.gctune import tune_for_streaming
    from estreamer.job import _tag_fmc
    from estreamer.metadata import MetadataCache

    tune_for_streaming()
    spec: WorkerSpec = conn.recv()
    cache = MetadataCache.open(spec.metadata_file) if spec.metadata_file else MetadataCache()
    decorator = Decorator(cache)
    # Events from several FMCs say which one: the same wrapper as in one process.
    decorate = _tag_fmc(spec.fmc_label)(decorator) if spec.fmc_label else decorator
    selector = RecordSelector(spec.record_filter)
    formatters = [get_formatter(name) for name in spec.formats]
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "learn":
            for raw in message[1]:
                decorator.learn(decode_record(raw))
            continue
        if message[0] != "work":
            return
        _, raws, offsets = message
        answer = _work_on(raws, offsets, decorate, decorator.learn, selector, formatters)
        try:
            conn.send(answer)
        except (BrokenPipeError, ConnectionResetError):
            return  # the runner is gone (it stopped, or failed and reports why)


Answer = tuple[list[list[bytes]], int, int, list[int], list[tuple[str, str, int]]]
"""What a bundle's work gives: lines by format, records written, records filtered out, the
indices of the records that did not decode, and the decoder's notes (key, text, offset)."""


def _work_on(raws: Sequence[bytes], offsets: Sequence[int], decorate: Decorator,
             learn: Callable[[Record], None], selector: RecordSelector,
             formatters: Sequence[Callable[[dict[str, Any]], bytes]]) -> Answer:
    """One bundle's records to lines: what a worker does, and the runner when it helps."""
    lines: list[list[bytes]] = [[] for _ in formatters]
    written = filtered = 0
    bad: list[int] = []
    notes: list[tuple[str, str, int]] = []
    for index, (raw, offset) in enumerate(zip(raws, offsets, strict=True)):
        record = decode_record(raw, offset)
        if record.notes:
            notes += [(key, text, offset) for key, text in record.notes]
        if record.error is not None:
            bad.append(index)
        elif record.category == "metadata":
            learn(record)
        if not selector.wants(record):
            filtered += 1
            continue
        event = decorate(record, record.take_event())
        for out, formatter in zip(lines, formatters, strict=True):
            out.append(formatter(event))
        written += 1
    return lines, written, filtered, bad, notes


# -- the runner's side ---------------------------------------------------------------------


_LONG_FRAME = b"\xff\xff\xff\xff"  # multiprocessing's length -1: an 8-byte length follows


class WorkerPipe:
    """The runner's end of one worker's socket, read and written by the runner's thread
    alone, never blocking on one direction while the other is stuck.

    There is no reader thread: a second thread in the runner's process waits for the GIL
    after every read while the runner works (the 5 ms switch interval), and the runner then
    waits for it; measured, the runner spent a quarter of its time waiting for the GIL.
    Instead, while a send cannot go on (the worker's socket buffer is full because the
    worker is itself blocked sending an answer), the runner reads the worker's answers,
    so the two can never wait on each other. Messages are framed as
    multiprocessing.connection frames them (a 4-byte big-endian length, or -1 and an
    8-byte one), so the worker's side is a plain `Connection`."""

    def __init__(self, sock: socket.socket):
        sock.setblocking(False)
        self.sock = sock
        self._answers: deque[Any] = deque()  # whole answers read, oldest first
        self._head = bytearray()  # the length word(s) of the answer being read
        # The answer being read goes into one buffer kept for every answer: a new one each
        # time (~0.5 MB of JSON lines a bundle) cost a zero fill and its page faults.
        self._buffer = bytearray(1 << 20)
        self._body: memoryview | None = None  # the answer being read, once its size is known
        self._got = 0  # bytes of _body read so far
        self._ended: BaseException | None = None  # why no more answers will come

    def send(self, message: object) -> None:
        payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        size = len(payload)
        header = struct.pack("!i", size) if size <= 0x7FFFFFFF else \
            struct.pack("!iQ", -1, size)
        parts = [memoryview(header), memoryview(payload)]
        while parts:
            try:
                sent = self.sock.sendmsg(parts)
            except BlockingIOError:
                sent = 0
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts:
                parts[0] = parts[0][sent:]
                # Full: read answers meanwhile, or the worker may be stuck sending one.
                readable, _, _ = select.select([self.sock], [self.sock], [])
                if readable:
                    self.pump()
                    if self._ended is not None:  # it will not read what we send either
                        raise BrokenPipeError(f"the worker's pipe ended ({self._ended})")

    def ready(self) -> bool:
        """An answer (or the pipe's end) is there to take without waiting."""
        if not self._answers:
            self.pump()
        return bool(self._answers)

    def get(self, timeout: float | None = None) -> Any:
        """The oldest answer, waiting for it; the exception that ended the pipe when no
        more will come; TimeoutError after `timeout` seconds."""
        while not self._answers:
            if self._ended is not None:  # asked again once the pipe's end was taken
                return self._ended
            readable, _, _ = select.select([self.sock], [], [], timeout)
            if not readable:
                return TimeoutError(f"no answer after {timeout:g} s")
            self.pump()
        return self._answers.popleft()

    def pump(self) -> None:
        """Read what the socket holds now, without waiting; complete answers are queued."""
        while self._ended is None:
            try:
                if self._body is None:
                    head = self._head
                    need = 12 if head[:4] == _LONG_FRAME else 4
                    data = self.sock.recv(need - len(head))
                    if not data:
                        raise EOFError("the worker's pipe ended")
                    head += data
                    if len(head) == 4 and head != _LONG_FRAME:
                        self._start(struct.unpack("!i", head)[0])
                    elif len(head) == 12:
                        self._start(struct.unpack("!Q", head[4:])[0])
                    continue
                got = self.sock.recv_into(self._body[self._got:])
                if not got:
                    raise EOFError("the worker's pipe ended")
                self._got += got
                if self._got == len(self._body):
                    body, self._body = self._body, None
                    with body:
                        self._answers.append(pickle.loads(body))
            except BlockingIOError:
                return
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                self._ended = exc
                self._answers.append(exc)

    def _start(self, size: int) -> None:
        self._head.clear()
        if size > len(self._buffer):
            self._buffer = bytearray(size)
        self._body = memoryview(self._buffer)[:size]
        self._got = 0

    def close(self) -> None:
        self.sock.close()


HERE = -1  # a _Batch's worker when the runner's process did the work itself


@dataclass
class _Batch:
    worker: int  # or HERE, with its answer already made
    raws: Sequence[bytes]
    offsets: Sequence[int]
    answer: Answer | None = None


class ParallelPipeline:
    """A `Pipeline` whose per-record work happens in worker processes. The runner hands it
    whole bundles (`handle_raw`); everything else (`maybe_commit`, `commit`, `close`, the
    stats, the bookmark, the monitor's view of the outputs) is the inner pipeline's, after
    the bundles in flight are written."""

    decodes_elsewhere = True  # the runner's sessions hand over RawRecords, not Records

    def __init__(self, inner: Pipeline, workers: int, spec: WorkerSpec):
        """`workers`: the processes doing the work, this one included (at least 2)."""
        if any(i in inner._keyed for i in range(len(inner.sinks))):
            raise ValueError("keyed outputs (Kafka) are written by one process only")
        if workers < 2:
            raise ValueError(f"a ParallelPipeline needs 2 processes or more, not {workers}")
        self.inner = inner
        self.spec = spec
        # This process's share: the inner pipeline's own decorator, selector and formats.
        self._here = (inner.decorate or _as_decoded, inner.selector,
                      [inner._formats[name] for name in spec.formats])
        self.done_here = 0  # bundles this process worked on itself
        self._pipes: list[WorkerPipe] = []
        self._processes: list[subprocess.Popen] = []
        for _ in range(workers - 1):
            # A program of its own (not multiprocessing's spawn, which re-imports the
            # caller's main module, nor fork, unsafe beside the runner's threads).
            mine, theirs = socket.socketpair()
            for end in (mine, theirs):
                # Room for the answers in flight: a worker whose answer does not fit waits
                # for the runner's reader thread, which waits for the GIL while the runner
                # works (up to the 5 ms switch interval); measured, 55k -> 69k records/s of
                # JSON with two processes. The kernel caps it at its own maximum.
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER)
                end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PIPE_BUFFER)
            process = subprocess.Popen(
                [sys.executable, "-m", "estreamer.parallel", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
            theirs.close()
            self._pipes.append(WorkerPipe(mine))
            self._processes.append(process)
            self._send(len(self._pipes) - 1, spec)
        # Started when they can take work: a stream that began while they were still
        # importing would wait on them (and so would every rate measured from it).
        for n, pipe in enumerate(self._pipes):
            ready = pipe.get(timeout=READY_TIMEOUT)
            if ready != ("ready",):
                self._stop_workers()
                self._fail(n, ready if isinstance(ready, BaseException)
                           else RuntimeError(repr(ready)[:80]))
        self._next = 0
        self._in_flight: deque[_Batch] = deque()
        self._sent = 0  # batches in flight in workers (the rest of _in_flight: done here)
        self._noticed: set[str] = set()
        self._broken: str | None = None

    # The runner reads these as it would a Pipeline's.
    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def workers(self) -> int:
        """The processes doing the work, this one included."""
        return len(self._pipes) + 1

    def handle_raw(self, raws: Sequence[bytes], offsets: Sequence[int]) -> tuple[list[int],
                                                                                   int | None]:
        """Take one bundle's records: (their record types, the newest archive timestamp)."""
        inner = self.inner
        stats, bookmark = inner.stats, inner.bookmark
        keep_raws: list[bytes] = []
        keep_offsets: list[int] = []
        metadata: list[bytes] = []
        types: list[int] = []
        newest = None
        for raw, offset in zip(raws, offsets, strict=True):
            stats.received += 1
            record_type, second = record_header(raw)
            if second is not None:
                if bookmark.is_duplicate(second, None, raw):
                    stats.duplicates += 1
                    continue
                bookmark.advance(second, raw=raw)
                if newest is None or second > newest:
                    newest = second
            types.append(record_type)
            keep_raws.append(raw)
            keep_offsets.append(offset)
            if record_type in METADATA_TYPES:
                metadata.append(raw)
        worker = self._destination() if keep_raws else None
        if metadata:
            self._learn(metadata, worker)
        if worker == HERE:
            decorate, selector, formatters = self._here
            # Its metadata was learnt just above, in stream order: nothing to learn again.
            answer = _work_on(keep_raws, keep_offsets, decorate, _learnt, selector,
                              formatters)
            self._in_flight.append(_Batch(HERE, keep_raws, keep_offsets, answer))
            self.done_here += 1
        elif worker is not None:
            self._send(worker, ("work", keep_raws, keep_offsets))
            self._in_flight.append(_Batch(worker, keep_raws, keep_offsets))
            self._sent += 1
        self._collect(block=False)
        return types, newest

    def _destination(self) -> int:
        """Which worker takes the next bundle, or HERE. Each worker holds up to
        IN_FLIGHT_PER_WORKER bundles; with all of them full and the oldest answer not back,
        this process works on the bundle itself rather than wait, up to as many bundles
        again (their lines wait for the answers before them). Past that it waits: a slow
        output slows the runner, not memory."""
        while self._sent >= IN_FLIGHT_PER_WORKER * len(self._pipes):
            head = self._in_flight[0]
            if head.worker == HERE or self._pipes[head.worker].ready():
                self._collect_one()
            elif len(self._in_flight) - self._sent < IN_FLIGHT_PER_WORKER:
                return HERE
            else:
                self._collect_one()
        worker = self._next
        self._next = (worker + 1) % len(self._pipes)
        return worker

    def _learn(self, raws: list[bytes], worker: int | None) -> None:
        """The runner's own cache (saved with each commit, and naming the bundles done here)
        and every worker but the one the bundle goes to (it learns them in place, in
        order)."""
        observe = self.inner.observe
        for raw in raws:
            record = decode_record(raw)
            if observe is not None and record.error is None:
                observe(record)
        for n in range(len(self._pipes)):
            if n != worker:
                self._send(n, ("learn", raws))

    def _send(self, worker: int, message: tuple) -> None:
        try:
            self._pipes[worker].send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
            self._fail(worker, exc)

    def _collect(self, block: bool) -> None:
        while self._in_flight:
            worker = self._in_flight[0].worker
            if not block and worker != HERE and not self._pipes[worker].ready():
                return
            self._collect_one()

    def _collect_one(self) -> None:
        batch = self._in_flight[0]
        if batch.worker == HERE:
            answer = batch.answer
        else:
            answer = self._pipes[batch.worker].get()
            if isinstance(answer, BaseException):
                self._fail(batch.worker, answer)
            self._sent -= 1
        lines, written, filtered, bad, notes = answer
        self._in_flight.popleft()
        inner = self.inner
        stats = inner.stats
        stats.written += written
        stats.filtered += filtered
        for key, text, offset in notes:
            if key not in self._noticed:
                self._noticed.add(key)
                log.warning("%s (offset %d)", text, offset)
        for index in bad:
            # Decoded again here, where the dead-letter file and the counts live.
            record = decode_record(batch.raws[index], batch.offsets[index])
            stats.malformed += 1
            stats.decode_errors[(record.record_type, decode_error_kind(record.error or ""))] += 1
            log.error("offset %d: record type %d: %s", record.offset, record.record_type,
                      record.error)
            if inner.observe is not None:
                inner.observe(record)
        for name, out in zip(self.spec.formats, lines, strict=True):
            inner.take_lines(name, out)
        inner.flush_batch()

    def _fail(self, worker: int, exc: BaseException) -> None:
        process = self._processes[worker]
        try:
            code = process.wait(0.5)
        except subprocess.TimeoutExpired:
            code = None
        self._broken = (f"worker process {worker} ({process.pid}) "
                        f"{'exited with ' + str(code) if code is not None else 'stopped answering'}"
                        f" ({type(exc).__name__}); the bookmark stays at the last commit")
        raise FatalRunError(self._broken) from exc

    def maybe_commit(self) -> None:
        self._collect(block=False)
        self.inner.maybe_commit()

    def commit(self) -> None:
        if self._broken is not None:
            raise FatalRunError(self._broken)
        self._collect(block=True)
        self.inner.commit()

    def close(self) -> None:
        try:
            if self._broken is None:
                self.commit()
        finally:
            self._stop_workers()
            for output in self.inner.outputs:
                output.close()

    def _stop_workers(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(("stop",))
            except OSError:
                pass
        for process in self._processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for pipe in self._pipes:
            pipe.close()


def _as_decoded(record: Record, event: dict[str, Any]) -> dict[str, Any]:
    return event


def _learnt(record: Record) -> None:
    """A bundle done in the runner's process was learnt from before it was worked on."""


def checked_workers(requested: int, cpus: int | None) -> int:
    """The processes to work with (this one included): never more than the machine has
    cores (eNcore's configs say 4 on any machine; more processes than cores only adds
    hand-offs)."""
    return max(1, min(requested, cpus or 1))


if __name__ == "__main__":  # a worker: python -m estreamer.parallel FD
    _work(Connection(int(sys.argv[1])))
