"""Assemble the main job from settings: TLS context, bookmark, outputs, pipeline, runner."""

import logging
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from estreamer import decorate
from estreamer.client import recovery
from estreamer.client.bookmark import Bookmark, bookmark_path
from estreamer.client.ha import (
    Active,
    HaRunner,
    MemberPipeline,
    PairBookmark,
    RecentKeys,
    pair_file,
)
from estreamer.client.permissions import check_key_files
from estreamer.client.runner import Runner, idle_timeout_for
from estreamer.config import HaPair, Secret, Server, Settings
from estreamer.deadletter import DeadLetter
from estreamer.decorate import Decorator as MetadataDecorator
from estreamer.errors import ConfigError
from estreamer.formats import get_formatter, splunk
from estreamer.metadata import MetadataCache, metadata_path
from estreamer.outputs import open_output
from estreamer.parallel import ParallelPipeline, WorkerSpec, checked_workers
from estreamer.pipeline import Decorator, Pipeline, RecordSelector, Sink
from estreamer.protocol import speedups
from estreamer.protocol.flags import LATEST_EVENTS
from estreamer.protocol.records import Record
from estreamer.tls import client_context, explain_tls_failure

log = logging.getLogger("Job")


def build_runner(
    settings: Settings,
    password: Secret,
    *,
    stop: threading.Event | None = None,
    extra_sinks: list[Sink] | None = None,
    on_record: Callable[[Record], None] | None = None,
    max_retries: int | None = None,
    commit_interval: float = 1.0,
    first_retry_delay: float | None = None,
    server: Server | None = None,
) -> Runner:
    """The runner for one FMC (`server`, default the first in the config). With several
    FMCs, each gets its own runner, outputs, bookmark and metadata cache; file outputs are
    told apart by `{host}`/`{port}` in their URIs, and events carry `fmc`.
    `first_retry_delay` overrides the config's `reconnectDelay` (tests)."""
    several = len(settings.fmcs) > 1
    server = server or settings.server
    if server is settings.servers[0]:
        for line in settings.report_lines():
            log.warning("%s", line)
        log.info("Decoder: %s.", speedups.DESCRIPTION)
        log.info("Names: %s.", decorate.DESCRIPTION)
        if any(o.adapter == "splunk" for o in settings.enabled_outputters):
            log.info("Splunk writer: %s.", splunk.DESCRIPTION)
    context = _member_context(settings, server, password)
    bookmark = Bookmark.open(bookmark_path(settings.bookmark_dir(), server.host, server.port))
    metadata_file = metadata_path(settings.bookmark_dir(), server.host, server.port)
    pipeline = _pipeline(
        settings, server, bookmark, metadata_file,
        tag=_tag_fmc(server.label) if several else None,
        extra_sinks=extra_sinks, commit_interval=commit_interval)
    workers = checked_workers(settings.worker_processes, os.cpu_count())
    if workers > 1 and _parallel_ok(pipeline, on_record):
        pipeline = ParallelPipeline(pipeline, workers, WorkerSpec(
            formats=tuple(dict.fromkeys(sink.format_name for sink in pipeline.sinks)),
            record_filter=settings.filter,
            metadata_file=metadata_file,
            fmc_label=server.label if several else None))
        log.info("Decoding in %d processes (this one and %d workers).", workers, workers - 1)
    return _member_runner(settings, server, context, pipeline,
                          settings.initial_timestamp(bookmark.timestamp), stop=stop,
                          max_retries=max_retries, on_record=on_record,
                          first_retry_delay=first_retry_delay)


def _parallel_ok(pipeline: Pipeline, on_record: Callable[[Record], None] | None) -> bool:
    """Whether this pipeline's per-record work can move to worker processes: only lines
    from the named formats travel back (a caller's own formatter or a per-record callback
    needs the records here), and Kafka keys its messages by event fields."""
    reasons = []
    if on_record is not None:
        reasons.append("a per-record callback is set")
    if any(sink.formatter is not get_formatter(sink.format_name) for sink in pipeline.sinks):
        reasons.append("an output has its own formatter")
    if pipeline._keyed:
        reasons.append("Kafka outputs key their messages by event fields")
    if reasons:
        log.warning("workerProcesses: decoding in this process (%s).", "; ".join(reasons))
    return not reasons


def build_ha_runner(
    settings: Settings,
    pair: HaPair,
    passwords: Sequence[Secret],
    *,
    stop: threading.Event | None = None,
    extra_sinks: list[Sink] | None = None,
    on_record: Callable[[Record], None] | None = None,
    commit_interval: float = 1.0,
    first_retry_delay: float | None = None,
) -> HaRunner:
    """The runner for an HA pair (estreamer.client.ha): one pipeline, bookmark, metadata
    cache and set of files for the pair, named by it; a Runner per connection to whichever
    member is being read. `passwords` are the members' PKCS#12 passwords, in order."""
    if pair.members[0] is settings.servers[0]:
        for line in settings.report_lines():
            log.warning("%s", line)
    directory = settings.bookmark_dir()
    contexts = [_member_context(settings, member, password)
                for member, password in zip(pair.members, passwords, strict=True)]
    bookmark = PairBookmark.open(pair_file(directory, pair.name, "bookmark.dat"))
    assert isinstance(bookmark, PairBookmark)
    recent = RecentKeys.open(pair_file(directory, pair.name, "ha.json"),
                             settings.ha_safety_window)
    bookmark.recent = recent
    active = Active(pair.members[0].label)
    pipeline = _pipeline(settings, pair, bookmark,
                         pair_file(directory, pair.name, "metadata.json"),
                         tag=_tag_member(pair.name, active), extra_sinks=extra_sinks,
                         commit_interval=commit_interval)

    def make_runner(index: int, member_pipeline: MemberPipeline, initial: int) -> Runner:
        return _member_runner(settings, pair.members[index], contexts[index],
                              member_pipeline,  # type: ignore[arg-type]  # a Pipeline proxy
                              initial, stop=stop, max_retries=0, on_record=on_record,
                              first_retry_delay=first_retry_delay)

    delay = settings.reconnect_delay if first_retry_delay is None else first_retry_delay
    return HaRunner(
        name=pair.name, members=[m.label for m in pair.members], pipeline=pipeline,
        recent=recent, make_runner=make_runner,
        start_timestamp=settings.initial_timestamp(bookmark.timestamp), active=active,
        window=settings.ha_safety_window, failover_attempts=settings.ha_failover_attempts,
        first_retry_delay=delay, max_retry_delay=settings.max_reconnect_delay, stop=stop)


def _member_context(settings: Settings, server: Server, password: Secret) -> ssl.SSLContext:
    check_key_files(server, config=settings.path)
    return client_context(
        server.pkcs12_filepath,
        password.reveal(),
        ca_file=server.ca_filepath,
        verify=server.verify_server,
        tls_version=server.tls_version,
    )


def _pipeline(
    settings: Settings,
    fmc: Server | HaPair,
    bookmark: Bookmark,
    metadata_file: Path,
    *,
    tag: Callable[[Decorator], Decorator] | None,
    extra_sinks: list[Sink] | None,
    commit_interval: float,
) -> Pipeline:
    """Outputs, file recovery, metadata cache, dead letters and the pipeline of one logical
    FMC (a lone server or an HA pair)."""
    sinks = [
        Sink(open_output(uri, o.options, settings.base_dir), o.adapter, get_formatter(o.adapter),
             name=uri)
        for o in settings.enabled_outputters
        for uri in [output_uri(o.uri, fmc, settings.fmcs)]
    ]
    sinks += extra_sinks or []
    if not sinks:
        log.warning("no outputter is enabled: records are received and dropped")
    # Exactly once in the files across a kill -9: cut them back to the last commit (the
    # FMC resends the rest), and from now on record their positions with every commit.
    outputs = [sink.output for sink in sinks]
    recovery.restore(outputs, bookmark)
    bookmark.set_outputs(recovery.positions(outputs))
    bookmark.save()
    # Names for ids, kept per FMC beside the bookmark so a restart still names events.
    metadata = MetadataCache.open(metadata_file)
    decorator = MetadataDecorator(metadata)
    decorate = tag(decorator) if tag is not None else decorator
    before_bookmark = [metadata.save, lambda: bookmark.set_outputs(recovery.positions(outputs))]
    observe = decorator.learn
    if settings.dead_letter is not None:
        # Sees each new record once (not the duplicates a reconnect resends); its lines are
        # made durable with the commit, before the bookmark passes their records.
        dead_letter = DeadLetter(Path(output_uri(str(settings.dead_letter), fmc, (fmc,))),
                                 fmc.label)
        before_bookmark.insert(0, dead_letter.flush)
        observe = _also_dead_letter(decorator.learn, dead_letter)
    return Pipeline(
        sinks, bookmark, RecordSelector(settings.filter), decorate=decorate,
        commit_interval=commit_interval,
        before_bookmark=before_bookmark,
        observe=observe,
    )


def _member_runner(
    settings: Settings,
    server: Server,
    context: ssl.SSLContext,
    pipeline: Pipeline,
    start_timestamp: int,
    *,
    stop: threading.Event | None,
    max_retries: int | None,
    on_record: Callable[[Record], None] | None,
    first_retry_delay: float | None,
) -> Runner:
    return Runner(
        host=server.host,
        port=server.port,
        context=context,
        pipeline=pipeline,
        flags=settings.request_flags(),
        events=LATEST_EVENTS,
        start_timestamp=start_timestamp,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.response_timeout,
        idle_timeout=(settings.idle_timeout if settings.idle_timeout is not None
                      else idle_timeout_for(settings.response_timeout)),
        monitor_period=settings.monitor.period,
        stop=stop,
        explain=lambda exc: explain_tls_failure(exc, host=server.host, port=server.port),
        max_retries=max_retries,
        on_record=on_record,
        first_retry_delay=(settings.reconnect_delay if first_retry_delay is None
                           else first_retry_delay),
        max_retry_delay=settings.max_reconnect_delay,
    )


FILE_SCHEMES = ("relfile://", "file://")


def output_uri(uri: str, server: Server | HaPair,
               servers: Sequence[Server | HaPair]) -> str:
    """The outputter URI for one FMC: `{host}` and `{port}` filled in (for an HA pair, its
    name and `ha`: both members write the pair's files). With several FMCs a file output
    must name them: each FMC's bookmark records and restores its own files after a crash,
    which only works if no other FMC writes into them."""
    filled = _fill(uri, server)
    shared = len({_fill(uri, other) for other in servers}) < len(servers)
    if shared and uri.lower().startswith(FILE_SCHEMES):
        hosts = {_fill("{host}", s) for s in servers}
        hint = "{host}-{port}" if len(hosts) < len(servers) else "{host}"
        raise ConfigError(
            f"output {uri}: with several servers each FMC needs its own files; put "
            f"{hint} in the URI, e.g. relfile:///data/{hint}/encore.{{0}}.json"
        )
    return filled


def _fill(uri: str, server: Server | HaPair) -> str:
    if isinstance(server, HaPair):
        return uri.replace("{host}", server.name).replace("{port}", "ha")
    return uri.replace("{host}", server.host).replace("{port}", str(server.port))


def _also_dead_letter(learn: Callable[[Record], None],
                      dead_letter: DeadLetter) -> Callable[[Record], None]:
    def observe(record: Record) -> None:
        learn(record)
        if record.error is not None:
            dead_letter.add(record)

    return observe


def _tag_fmc(label: str) -> Callable[[Decorator], Decorator]:
    """Events from several FMCs say which one they came from: ids are per FMC."""

    def wrap(decorate: Decorator) -> Decorator:
        def tagged(record: Record, event: dict) -> dict:
            event = decorate(record, event)
            event["fmc"] = label
            return event

        return tagged

    return wrap


def _tag_member(pair: str, active: Active) -> Callable[[Decorator], Decorator]:
    """Events of an HA pair say the pair (`fmc`, what a search groups by) and the member
    that sent them (`fmc_member`, host:port), which changes with a switch."""

    def wrap(decorate: Decorator) -> Decorator:
        def tagged(record: Record, event: dict) -> dict:
            event = decorate(record, event)
            event["fmc"] = pair
            event["fmc_member"] = active.label
            return event

        return tagged

    return wrap
