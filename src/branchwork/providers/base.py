"""The contract between Branchwork and a model provider.

A provider module exposes `register() -> ProviderInfo` under the entry-point group
`branchwork.providers` (built-ins are registered the same way as plugins). Its factory builds a
`Model` for a model name; the model's `stream()` yields `TextDelta` / `ReasoningDelta` items and
ends with exactly one `ModelResponse`. Providers only translate: the agent loop owns retries,
tool execution and history.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from branchwork.domain.errors import Cancelled, ProviderError
from branchwork.domain.messages import ModelRequest, ModelResponse, StreamItem

__all__ = [
    "Model",
    "ModelFactory",
    "ProviderInfo",
    "ProviderOptions",
    "complete",
    "new_call_id",
    "provider_status_error",
    "raise_if_cancelled",
    "redact",
]

RETRYABLE_STATUSES = frozenset({408, 409, 429})


@runtime_checkable
class Model(Protocol):
    """A model ready to be called: `name` is its full `provider:model` spec.

    A model may also have a `context_tokens: int` attribute: the prompt budget the agent keeps
    to (default 24,000 when absent).
    """

    @property
    def name(self) -> str: ...

    def stream(
        self, request: ModelRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[StreamItem]:
        """Yield deltas, then one final `ModelResponse`; raise `Cancelled` when `cancel` is set
        between chunks, `ProviderError` when the provider fails."""
        ...


@dataclass(frozen=True)
class ProviderOptions:
    """What a factory may use besides the model name. Secrets never show in the repr."""

    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    max_retries: int = 2


ModelFactory = Callable[[str, ProviderOptions], Model]


def _always_available() -> str | None:
    return None


@dataclass(frozen=True)
class ProviderInfo:
    """One provider, as its `register()` describes it.

    `unavailable_reason()` returns None when the provider can be used here, else why not
    (a missing package, a missing model file) and how to fix it.
    """

    name: str
    factory: ModelFactory
    description: str = ""
    unavailable_reason: Callable[[], str | None] = _always_available
    aliases: tuple[str, ...] = ()
    # Whether the model part of a spec may name a file on this machine (a path the provider
    # reads), except the names in `named_models`: a server refuses such specs from its callers.
    reads_files: bool = False
    named_models: frozenset[str] = frozenset()

    def available(self) -> bool:
        return self.unavailable_reason() is None


def complete(
    model: Model, request: ModelRequest, *, cancel: threading.Event | None = None
) -> ModelResponse:
    """Run `model.stream()` to its end and return the final response."""
    response: ModelResponse | None = None
    for item in model.stream(request, cancel=cancel):  # run to the end, so the stream closes
        if isinstance(item, ModelResponse):
            response = item
    if response is not None:
        return response
    raise ProviderError(
        f"model {model.name} ended its stream without a response: "
        "this is a bug in the provider, report it with the model name."
    )


def raise_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the model call was cancelled: send the message again to retry.")


def new_call_id() -> str:
    """A tool-call id for providers whose wire format has none."""
    return f"call_{uuid.uuid4().hex[:16]}"


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every given secret replaced, for messages that quote a provider's reply."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def provider_status_error(model: str, status: int, detail: str, *, key_hint: str) -> ProviderError:
    """The `ProviderError` for an HTTP error status, with what to do about it."""
    detail = " ".join(detail.split())[:300]
    return ProviderError(
        f"{model} failed with HTTP {status} ({detail}): {_status_remedy(status, model, key_hint)}",
        status=status,
        retryable=is_retryable_status(status),
    )


def _status_remedy(status: int, model: str, key_hint: str) -> str:
    if status in (401, 403):
        return f"check {key_hint}."
    if status == 404:
        return f"check the model name in {model!r} and the provider's base URL."
    if status == 429:
        return "wait and retry; if it persists, check the account's rate limits and quota."
    if status >= 500 or status in RETRYABLE_STATUSES:
        return "the provider is struggling; retry in a moment."
    return "the provider rejected the request; check the model supports it, or shorten it."
