"""`awooop run-demo`, what `make run` starts: the platform, the demo tenants onboarded
from their contract files (`deploy/contracts/<project>/`: applied, published, signed and
activated over the approval API), a short demo conversation pushed through it (each
message after the previous run completed, its timeline printed), a restart approved by a
second person's button press in the fake Telegram chat (`demo_approval`), then the
platform keeps serving until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from awooop.cli import dev_chat
from awooop.cli.contract_files import ContractFileError
from awooop.cli.demo_approval import push_approval
from awooop.cli.demo_signals import StopSignals
from awooop.cli.demo_tenant import DEFAULT_BOT, DEFAULT_PROJECT, DEFAULT_USER
from awooop.cli.onboarding import onboard, read_tenant_files, tenant_folders, wait_until_read
from awooop.cli.queries import QueryClient, format_channel_event, format_timeline
from awooop.cli.send import produce, telegram_record
from awooop.cli.up import StartFailed, running_platform
from awooop.infra.settings import Settings


@dataclass(frozen=True)
class Said:
    """One message of the demo: who wrote it, to which tenant's bot."""

    project: str
    bot: str
    user: str
    text: str


ACME = Said("acme", "7100", "2002", "")
"""The second tenant's bot and a person of its bound chat (deploy/contracts/acme)."""

CONVERSATION = (
    Said(DEFAULT_PROJECT, DEFAULT_BOT, DEFAULT_USER, "Is checkout healthy?"),
    Said(DEFAULT_PROJECT, DEFAULT_BOT, DEFAULT_USER, "Thanks! Could you check it once more?"),
    replace(ACME, text="How is billing doing?"),
    Said(DEFAULT_PROJECT, DEFAULT_BOT, DEFAULT_USER, "Great, that's all for today."),
)
"""Two tenants side by side: each message reaches the agent its bot is bound to."""
FINISHED = ("completed", "failed", "cancelled", "timeout")
CONTRACTS_FOLDER = Path("deploy", "contracts")


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    demo = verbs.add_parser("run-demo", help="run the platform and push a demo conversation")
    demo.add_argument(
        "--fresh", action="store_true", help="start Postgres empty next to a new broker"
    )
    demo.add_argument(
        "--exit-after-demo", action="store_true", help="stop once the conversation is done"
    )
    demo.add_argument(
        "--contracts",
        type=Path,
        metavar="FOLDER",
        help="a folder of tenant folders of contract files (default: deploy/contracts)",
    )
    demo.set_defaults(handler=run_demo)


def demo_contracts_folder(given: Path | None = None) -> Path:
    """``given``, else the repository's ``deploy/contracts``, else the one under the
    working directory. Raises ``ContractFileError`` when none exists."""
    if given is not None:
        return given
    checkout = Path(__file__).resolve().parents[4] / CONTRACTS_FOLDER
    for candidate in (checkout, Path.cwd() / CONTRACTS_FOLDER):
        if candidate.is_dir():
            return candidate
    raise ContractFileError(f"no {CONTRACTS_FOLDER} folder found: pass --contracts FOLDER")


def onboard_tenants(root: Path) -> None:
    """Onboard every tenant folder under ``root``; one line per contract. Every file is
    read and checked before the first command is sent."""
    tenants = [(folder, read_tenant_files([folder])) for folder in tenant_folders(root)]
    activated = []
    for folder, files in tenants:
        print(f"onboarding {folder.name} from {folder}")
        for done in onboard(files):
            print(f"  {done.line()}")
            activated.append(done)
    # The conversation starts once every service decides by what was just activated.
    wait_until_read(activated)


def _wait_for_new_run(
    client: QueryClient, known: set[str], stop: StopSignals, timeout: float = 60.0
) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.received.is_set():
        for run in client.runs(limit=10):
            if run["run_id"] not in known and run["state"] in FINISHED:
                return client.run(run["run_id"])
        time.sleep(0.2)
    return None


def _wait_for_reply(
    fake_chat_url: str, chat: str, seen: int, stop: StopSignals, timeout: float = 15.0
) -> dict[str, Any] | None:
    """The first message the fake chat accepted for `chat` after call number `seen`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.received.is_set():
        for call in dev_chat.received(fake_chat_url, chat=chat):
            if call["seq"] > seen and call["ok"]:
                return call
        time.sleep(0.2)
    return None


def _last_call(fake_chat_url: str) -> int:
    return max((call["seq"] for call in dev_chat.received(fake_chat_url)), default=0)


def _show_reply(fake_chat_url: str, said: Said, mode: str, seen: int, stop: StopSignals) -> None:
    if mode == "shadow" or not fake_chat_url:
        return
    reply = _wait_for_reply(fake_chat_url, said.user, seen, stop)
    if reply is None:
        print(f"  (no reply reached the fake Telegram chat {said.user} within 15 s)")
        return
    print(f"  the fake Telegram chat {said.user} received ({reply['method']}): {reply['text']!r}")


def push_conversation(stop: StopSignals, fake_chat_url: str = "") -> bool:
    """Send the demo messages one by one; print each run's timeline and, for a tenant whose
    people see replies, what the fake chat received. False on a stall."""
    settings = Settings.from_env()
    clients = {said.project: QueryClient(said.project) for said in CONVERSATION}
    try:
        known = {run["run_id"] for client in clients.values() for run in client.runs(limit=200)}
        for number, said in enumerate(CONVERSATION, start=1):
            key, value = telegram_record(
                project=said.project,
                bot=said.bot,
                update_id=int(time.time() * 1000),
                user=said.user,
                text=said.text,
            )
            print(
                f"\n[{number}/{len(CONVERSATION)}] {said.project}: telegram user {said.user} "
                f"to bot {said.bot}: {said.text!r}"
            )
            seen = _last_call(fake_chat_url) if fake_chat_url else 0
            asyncio.run(produce(settings, key, value))
            detail = _wait_for_new_run(clients[said.project], known, stop)
            if detail is None:
                print("no completed run appeared within 60 s; see the process logs")
                return False
            known.add(str(detail["run"]["run_id"]))
            print("\n".join(format_timeline(detail)))
            _show_reply(fake_chat_url, said, str(detail["run"]["mode"]), seen, stop)
    finally:
        for client in clients.values():
            client.close()
    return True


def show_channel_events() -> None:
    """Every inbound record of the demo tenants, with its outcome (`GET /v1/channel-events`)."""
    for project in dict.fromkeys(said.project for said in CONVERSATION):
        client = QueryClient(project)
        try:
            events = client.channel_events(limit=50)
        finally:
            client.close()
        print(f"\nchannel events of {project} (`awooop channel-events list --project {project}`):")
        print("\n".join(f"  {format_channel_event(event)}" for event in reversed(events)))


def run_demo(args: argparse.Namespace) -> int:
    """`awooop run-demo [--fresh] [--exit-after-demo]`."""
    with StopSignals() as stop:
        try:
            with running_platform(args.fresh, stop) as platform:
                onboard_tenants(demo_contracts_folder(args.contracts))
                finished = push_conversation(stop, platform.fake_chat_url)
                if finished and platform.fake_chat_url:
                    finished = push_approval(stop, platform.fake_chat_url)
                if not finished:
                    return 1
                show_channel_events()
                print(f"\ndemo done: `awooop runs list --project {DEFAULT_PROJECT}` lists them")
                if args.exit_after_demo:
                    return 0
                print("the platform keeps serving; Ctrl-C stops it")
                stop.wait()
                print(f"{stop.name} received")
        except StartFailed:
            return 1
    return 0
