"""The provider each agent revision runs on, built once and reused.

A scripted agent gets a `ScriptedChat` over its script. An OpenAI-compatible one
gets a client for its `base_url`, with the API key its credential reference
names inside its own project's namespace (`AWOOOP_TENANT_<PROJECT>_<NAME>`, or
a file under `AWOOOP_SECRETS_ROOT/<project>/`): one client per (project,
base URL, key), so its HTTP connections are kept and reused across steps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from awooop.contracts.families.agent import Agent, OpenAICompatibleProvider, ScriptedProvider
from awooop.runtime.adapters.openai_provider import OpenAICompatibleChat
from awooop.runtime.domain.llm import Provider
from awooop.runtime.domain.scripted import SCRIPTED_MODEL, ScriptedChat
from awooop.security.tenant_credentials import resolve_credential

NO_KEY = "none"
"""The key sent to a server that needs none (local vLLM, Ollama): the client wants one."""


class ProviderCatalogue:
    """Providers by agent revision; `CredentialMissing` when a key reference resolves to
    nothing (the step fails the run with `E-LLM-CREDENTIAL`)."""

    def __init__(self, env: Mapping[str, str] | None = None, max_retries: int = 2) -> None:
        self._env = os.environ if env is None else env
        root = self._env.get("AWOOOP_SECRETS_ROOT")
        self._secrets_root = Path(root) if root else None
        self._max_retries = max_retries
        self._scripted: dict[str, ScriptedChat] = {}
        self._remote: dict[tuple[str, str, str], OpenAICompatibleChat] = {}

    def provider(
        self, project_id: str, revision: str, agent: Agent, projects: Iterable[str] = ()
    ) -> Provider:
        chosen = agent.provider
        if isinstance(chosen, ScriptedProvider):
            found = self._scripted.get(revision)
            if found is None:
                found = self._scripted[revision] = ScriptedChat(chosen)
            return found
        return self._openai(project_id, chosen, projects)

    def _openai(
        self, project_id: str, chosen: OpenAICompatibleProvider, projects: Iterable[str]
    ) -> OpenAICompatibleChat:
        key = NO_KEY
        if chosen.api_key is not None:
            key = resolve_credential(
                project_id,
                chosen.api_key,
                env=self._env,
                secrets_root=self._secrets_root,
                other_projects=projects,
            )
        slot = (project_id, chosen.base_url, key)
        client = self._remote.get(slot)
        if client is None:
            client = OpenAICompatibleChat(chosen.base_url, key, max_retries=self._max_retries)
            self._remote[slot] = client
        return client


def model_of(agent: Agent) -> str:
    """The model a step of `agent` runs (what the budget's price table is looked up by)."""
    chosen = agent.provider
    return SCRIPTED_MODEL if isinstance(chosen, ScriptedProvider) else chosen.model
