"""LLM providers behind one normalized message model (`branchwork.domain.messages`).

`resolve_model("provider:model")` builds a `Model`; `model.stream(request)` yields
`TextDelta` / `ReasoningDelta` and a final `ModelResponse`; `complete()` returns just the latter.
Providers come from the `branchwork.providers` entry-point group: `openai` (and any
OpenAI-compatible server), `anthropic`, `local` (the embedded SmolLM2) and `scripted` (tests).
Provider modules themselves import their SDKs, so they are not imported here.
"""

from branchwork.providers.base import (
    Model,
    ModelFactory,
    ProviderInfo,
    ProviderOptions,
    complete,
)
from branchwork.providers.registry import (
    DEFAULT_LOCAL_MODEL,
    ModelSpec,
    ProviderRegistry,
    check_model_spec,
    default_registry,
    names_a_file,
    parse_model_spec,
    resolve_model,
)
from branchwork.providers.testing import (
    ScriptedError,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
)

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "Model",
    "ModelFactory",
    "ModelSpec",
    "ProviderInfo",
    "ProviderOptions",
    "ProviderRegistry",
    "ScriptedError",
    "ScriptedModel",
    "ScriptedReply",
    "ScriptedToolCall",
    "check_model_spec",
    "complete",
    "default_registry",
    "names_a_file",
    "parse_model_spec",
    "resolve_model",
]
