"""Assemble the main job from settings: TLS context, bookmark, outputs, pipeline, runner."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from estreamer.client import recovery
from estreamer.client.bookmark import Bookmark, bookmark_path
from estreamer.client.permissions import check_key_files
from estreamer.client.runner import Runner, idle_timeout_for
from estreamer.config import Secret, Server, Settings
from estreamer.deadletter import DeadLetter
from estreamer.decorate import Decorator as MetadataDecorator
from estreamer.errors import ConfigError
from estreamer.formats import get_formatter
from estreamer.metadata import MetadataCache, metadata_path
from estreamer.outputs import open_output
from estreamer.pipeline import Decorator, Pipeline, RecordSelector, Sink
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
    several = len(settings.servers) > 1
    server = server or settings.server
    if server is settings.servers[0]:
        for line in settings.report_lines():
            log.warning("%s", line)
    check_key_files(server, config=settings.path)
    context = client_context(
        server.pkcs12_filepath,
        password.reveal(),
        ca_file=server.ca_filepath,
        verify=server.verify_server,
        tls_version=server.tls_version,
    )
    bookmark = Bookmark.open(bookmark_path(settings.bookmark_dir(), server.host, server.port))
    sinks = [
        Sink(open_output(uri, o.options, settings.base_dir), o.adapter, get_formatter(o.adapter),
             name=uri)
        for o in settings.enabled_outputters
        for uri in [output_uri(o.uri, server, settings.servers)]
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
    # Names for ids, kept per server beside the bookmark so a restart still names events.
    metadata = MetadataCache.open(metadata_path(settings.bookmark_dir(), server.host, server.port))
    decorator = MetadataDecorator(metadata)
    decorate = _tag_fmc(decorator, f"{server.host}:{server.port}") if several else decorator
    before_bookmark = [metadata.save, lambda: bookmark.set_outputs(recovery.positions(outputs))]
    observe = decorator.learn
    if settings.dead_letter is not None:
        # Sees each new record once (not the duplicates a reconnect resends); its lines are
        # made durable with the commit, before the bookmark passes their records.
        dead_letter = DeadLetter(Path(output_uri(str(settings.dead_letter), server,
                                                 (server,))), f"{server.host}:{server.port}")
        before_bookmark.insert(0, dead_letter.flush)
        observe = _also_dead_letter(decorator.learn, dead_letter)
    pipeline = Pipeline(
        sinks, bookmark, RecordSelector(settings.filter), decorate=decorate,
        commit_interval=commit_interval,
        before_bookmark=before_bookmark,
        observe=observe,
    )
    return Runner(
        host=server.host,
        port=server.port,
        context=context,
        pipeline=pipeline,
        flags=settings.request_flags(),
        events=LATEST_EVENTS,
        start_timestamp=settings.initial_timestamp(bookmark.timestamp),
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


def output_uri(uri: str, server: Server, servers: tuple[Server, ...]) -> str:
    """The outputter URI for one FMC: `{host}` and `{port}` filled in. With several FMCs a
    file output must name them: each FMC's bookmark records and restores its own files
    after a crash, which only works if no other FMC writes into them."""
    filled = _fill(uri, server)
    shared = len({_fill(uri, other) for other in servers}) < len(servers)
    if shared and uri.lower().startswith(FILE_SCHEMES):
        hint = "{host}-{port}" if len({s.host for s in servers}) < len(servers) else "{host}"
        raise ConfigError(
            f"output {uri}: with several servers each FMC needs its own files; put "
            f"{hint} in the URI, e.g. relfile:///data/{hint}/encore.{{0}}.json"
        )
    return filled


def _fill(uri: str, server: Server) -> str:
    return uri.replace("{host}", server.host).replace("{port}", str(server.port))


def _also_dead_letter(learn: Callable[[Record], None],
                      dead_letter: DeadLetter) -> Callable[[Record], None]:
    def observe(record: Record) -> None:
        learn(record)
        if record.error is not None:
            dead_letter.add(record)

    return observe


def _tag_fmc(decorate: Decorator, label: str) -> Decorator:
    """Events from several FMCs say which one they came from: ids are per FMC."""

    def tagged(record: Record, event: dict) -> dict:
        event = decorate(record, event)
        event["fmc"] = label
        return event

    return tagged
