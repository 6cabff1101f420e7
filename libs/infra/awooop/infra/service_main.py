"""The process entry point of every service: `awooop run <service>` lands here.

Serves `/healthz` and `/readyz` (port `AWOOOP_HEALTH_PORT`, none when unset)
from the moment the process starts, starts the `ServiceRunner`, and stops
cleanly on SIGTERM or SIGINT (exit 0). When a supervised task crashes, the
process stays unready for `AWOOOP_CRASH_LINGER_SECONDS` (default 1) so a
probe sees it, stops, and exits with `EXIT_CRASHED` for its supervisor to
restart it. A runner halted by a broker reset stays up, unready; once `awooop
recover broker-reset` has recorded the new epoch in its schema, the process
restarts the runner in place and turns ready again.

`AWOOOP_FAULT_RELAY_EXIT_AFTER_ACK=1` is a fault-injection switch for the
crash tests: the process exits abruptly right after the broker acknowledged
its first relay batch and before the outbox commit. Nothing sets it outside
those tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from awooop.contracts.registries.errors import E_SCHEMA_BEHIND
from awooop.infra.health import health_app
from awooop.infra.heap import freeze_start_up_objects, thaw_start_up_objects
from awooop.infra.http_server import embedded_server
from awooop.infra.logging import configure_logging, get_logger
from awooop.infra.relay import CrashPoint
from awooop.infra.runner import SchemaBehind, ServiceRunner, ServiceSpec
from awooop.infra.settings import Settings, SettingsError

log = get_logger(__name__)

EXIT_CRASHED = 70
"""The exit status of a process whose supervised task crashed (EX_SOFTWARE)."""

EXIT_NOT_CONFIGURED = 78
"""The exit status of a process that cannot start as configured (EX_CONFIG): its schema
is behind its code, or a setting is missing."""


def _fault_crash_point() -> CrashPoint | None:
    if os.environ.get("AWOOOP_FAULT_RELAY_EXIT_AFTER_ACK") != "1":
        return None

    async def exit_now(stage: str, positions: list[int]) -> None:
        log.warning("fault_injected_exit", stage=stage, positions=len(positions))
        os._exit(86)

    return exit_now


async def serve(spec: ServiceSpec, settings: Settings | None = None) -> int:
    """Run one service until SIGTERM/SIGINT (0) or a crash (`EXIT_CRASHED`)."""
    settings = (settings or Settings.from_env()).without_admin()
    configure_logging(settings.log_level, settings.log_format)
    if "AWOOOP_DATABASE_URL" in os.environ:
        log.warning("admin_url_ignored", detail="a service logs in as its own role only")
    runner = ServiceRunner(spec, settings, relay_crash_point=_fault_crash_point())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = None
    server_task = None
    if port := os.environ.get("AWOOOP_HEALTH_PORT"):
        host = os.environ.get("AWOOOP_HEALTH_HOST", "127.0.0.1")
        server = embedded_server(
            health_app(spec.service, runner.readiness, runner.metrics.registry), host, int(port)
        )
        server_task = asyncio.create_task(server.serve())
    status = 0
    try:
        start = asyncio.create_task(runner.start())
        stopping = asyncio.create_task(stop.wait())
        failing = asyncio.create_task(runner.failed.wait())
        await asyncio.wait({start, stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        if start.done() and not failing.done():
            try:
                start.result()
            except (SchemaBehind, SettingsError) as refusal:
                code = E_SCHEMA_BEHIND if isinstance(refusal, SchemaBehind) else None
                log.error(
                    "service_refused_to_start",
                    service=spec.service,
                    code=code.code if code else None,
                    reason=str(refusal),
                )
                status = EXIT_NOT_CONFIGURED
                return status
            log.info("service_started", service=spec.service, instance=runner.instance_id)
            freeze_start_up_objects()
            await _serve_until_stopped(runner, stopping, failing)
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await start
        if runner.failed.is_set():  # not `failing.done()`: a crash may be this instant's
            status = EXIT_CRASHED
            log.error("service_exiting", service=spec.service, reason=runner.failure)
            await asyncio.sleep(float(os.environ.get("AWOOOP_CRASH_LINGER_SECONDS", "1")))
        for waiter in (stopping, failing):
            waiter.cancel()
    except BaseException as error:
        if not isinstance(error, asyncio.CancelledError):
            log.error("service_failed", service=spec.service, error=repr(error), exc_info=error)
        status = status or EXIT_CRASHED
        raise
    finally:
        await runner.stop()
        if server is not None and server_task is not None:
            server.should_exit = True
            await server_task
        log.info("service_stopped", service=spec.service)
        if runner.left_behind:
            # The event loop's own shutdown would wait, with no bound, for the tasks the
            # stop gave up on: the process ends here instead, with the status it had
            # (a failure on its way out was logged above).
            _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


async def _serve_until_stopped(
    runner: ServiceRunner, stopping: asyncio.Task[bool], failing: asyncio.Task[bool]
) -> None:
    """Wait for a stop or a crash; restart the runner in place after each broker recovery.

    A restart that fails (the new broker unreachable, say) is a crash like any other.
    """
    while True:
        recovering = asyncio.create_task(runner.recovered.wait())
        await asyncio.wait({stopping, failing, recovering}, return_when=asyncio.FIRST_COMPLETED)
        if not recovering.done():
            recovering.cancel()
            return
        log.info("service_restarting", service=runner.spec.service, reason="broker recovered")
        # The parts the restart drops were frozen with the first start's objects.
        thaw_start_up_objects()
        restart = asyncio.create_task(runner.restart())
        await asyncio.wait({restart, stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        if not restart.done():  # a stop or a crash while restarting: the caller ends
            restart.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await restart
            return
        if (error := restart.exception()) is not None:
            runner.crash(f"restart after the broker recovery: {type(error).__name__}: {error}")
            return
        log.info("service_started", service=runner.spec.service, instance=runner.instance_id)
        freeze_start_up_objects()


EVENT_LOOPS = ("uvloop", "asyncio")
"""`AWOOOP_EVENT_LOOP`: libuv's loop (the default), or the standard library's."""


def run(spec: ServiceSpec) -> None:
    """Blocking form of `serve` for a process's main, on the event loop
    `AWOOOP_EVENT_LOOP` names; exits with its status."""
    loop = os.environ.get("AWOOOP_EVENT_LOOP", "").strip() or EVENT_LOOPS[0]
    if loop not in EVENT_LOOPS:
        print(
            f"AWOOOP_EVENT_LOOP={loop!r} is not one of {', '.join(EVENT_LOOPS)}",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_NOT_CONFIGURED)
    if loop == "uvloop":
        import uvloop  # only where it is asked for: `asyncio` runs without it

        status = uvloop.run(serve(spec))
    else:
        status = asyncio.run(serve(spec))
    if status:
        raise SystemExit(status)
