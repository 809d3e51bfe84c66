"""Assemble the main job from settings: TLS context, bookmark, outputs, pipeline, runner."""

import logging
import threading
from collections.abc import Callable

from estreamer.client import recovery
from estreamer.client.bookmark import Bookmark, bookmark_path
from estreamer.client.permissions import check_key_files
from estreamer.client.runner import Runner, idle_timeout_for
from estreamer.config import Secret, Settings
from estreamer.decorate import Decorator
from estreamer.formats import get_formatter
from estreamer.metadata import MetadataCache, metadata_path
from estreamer.outputs import open_output
from estreamer.pipeline import Pipeline, RecordSelector, Sink
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
    first_retry_delay: float = 2.0,
) -> Runner:
    server = settings.server
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
        Sink(open_output(o.uri, o.options, settings.base_dir), o.adapter, get_formatter(o.adapter))
        for o in settings.enabled_outputters
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
    decorator = Decorator(metadata)
    pipeline = Pipeline(
        sinks, bookmark, RecordSelector(settings.filter), decorate=decorator,
        commit_interval=commit_interval,
        before_bookmark=[metadata.save,
                         lambda: bookmark.set_outputs(recovery.positions(outputs))],
        observe=decorator.learn,
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
        idle_timeout=idle_timeout_for(settings.response_timeout),
        monitor_period=settings.monitor.period,
        stop=stop,
        explain=lambda exc: explain_tls_failure(exc, host=server.host, port=server.port),
        max_retries=max_retries,
        on_record=on_record,
        first_retry_delay=first_retry_delay,
    )
