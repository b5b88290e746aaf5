"""Model specs, the provider registry and the choice of the default model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.providers import (
    ProviderInfo,
    ProviderOptions,
    ProviderRegistry,
    ScriptedModel,
    default_registry,
    parse_model_spec,
    resolve_model,
)
from branchwork.providers.anthropic import AnthropicModel, split_thinking_suffix
from branchwork.providers.base import Model
from branchwork.providers.openai import OpenAIModel


def test_spec_splits_at_the_first_colon_only() -> None:
    spec = parse_model_spec("scripted:/tmp/a:b.json")
    assert (spec.provider, spec.model) == ("scripted", "/tmp/a:b.json")
    assert str(parse_model_spec(" OpenAI:gpt-4o-mini ")) == "openai:gpt-4o-mini"
    assert parse_model_spec("scripted").model == ""


def test_spec_without_provider_is_refused_with_an_example() -> None:
    with pytest.raises(InvalidInput, match=r"openai:gpt-4o-mini"):
        parse_model_spec(":gpt-4o")


def test_builtin_providers_are_loaded_from_entry_points() -> None:
    names = default_registry(refresh=True).names()
    assert {"openai", "anthropic", "local", "scripted"} <= set(names)


def test_unknown_provider_suggests_the_closest_and_lists_all() -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_model("openia:gpt-4o", env={})
    message = caught.value.message
    assert "did you mean 'openai'?" in message
    assert "anthropic" in message and "scripted" in message


def test_registry_get_of_unknown_name_is_not_found() -> None:
    with pytest.raises(NotFound, match="unknown model provider 'nope'"):
        ProviderRegistry([]).get("nope")


def test_model_comes_from_the_env_when_no_spec_is_given(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["hello"]))
    model = resolve_model(None, env={"BRANCHWORK_MODEL": f"scripted:{script}"})
    assert isinstance(model, ScriptedModel)
    assert model.name == f"scripted:{script}"


def test_the_spec_argument_wins_over_the_env(tmp_path: Path) -> None:
    script = tmp_path / "r.json"
    script.write_text("[]")
    model = resolve_model(f"scripted:{script}", env={"BRANCHWORK_MODEL": "anthropic:x"})
    assert isinstance(model, ScriptedModel)


def test_local_model_is_the_default_when_it_is_installed() -> None:
    local = default_registry().get("local")
    if not local.available():
        pytest.skip(f"local model not installed: {local.unavailable_reason()}")
    assert resolve_model(None, env={}).name == "local:smollm2"


def _unavailable_registry() -> ProviderRegistry:
    def factory(name: str, options: ProviderOptions) -> Model:
        raise AssertionError("must not be built")

    return ProviderRegistry(
        [ProviderInfo("local", factory, unavailable_reason=lambda: "llama-cpp is missing")]
    )


def test_without_any_model_the_error_says_how_to_configure_one() -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_model(None, env={}, registry=_unavailable_registry())
    message = caught.value.message
    assert "llama-cpp is missing" in message
    assert "--model openai:gpt-4o-mini" in message
    assert "OPENAI_API_KEY" in message and "BRANCHWORK_MODEL" in message


def test_an_unavailable_provider_is_refused_with_its_reason() -> None:
    with pytest.raises(InvalidInput, match="cannot be used here: llama-cpp is missing"):
        resolve_model("local:smollm2", env={}, registry=_unavailable_registry())


def test_openai_without_key_or_base_url_says_which_variable_to_set() -> None:
    with pytest.raises(InvalidInput, match="OPENAI_API_KEY is not set"):
        resolve_model("openai:gpt-4o-mini", env={})


def test_openai_base_url_from_env_needs_no_key() -> None:
    env = {"BRANCHWORK_OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    model = resolve_model("openai:llama3", env=env)
    assert isinstance(model, OpenAIModel)
    assert "127.0.0.1:1" in repr(model)


def test_openai_compatible_is_an_alias_of_openai() -> None:
    model = resolve_model("openai-compatible:qwen", env={"OPENAI_BASE_URL": "http://h:1/v1"})
    assert model.name == "openai:qwen"


def test_api_keys_never_show_in_reprs() -> None:
    key = "sk-test-0123456789abcdef"
    openai_model = resolve_model("openai:gpt-4o-mini", env={"OPENAI_API_KEY": key})
    anthropic_model = resolve_model("anthropic:claude-x", env={"ANTHROPIC_API_KEY": key})
    options = ProviderOptions(env={"OPENAI_API_KEY": key}, api_key=key)
    for text in (repr(openai_model), repr(anthropic_model), repr(options)):
        assert key not in text


def test_anthropic_needs_its_key() -> None:
    with pytest.raises(InvalidInput, match="ANTHROPIC_API_KEY is not set"):
        resolve_model("anthropic:claude-sonnet-4-5", env={})


def test_anthropic_thinking_suffix_sets_the_budget() -> None:
    assert split_thinking_suffix("claude-x+thinking") == ("claude-x", 2048)
    assert split_thinking_suffix("claude-x+thinking=4096") == ("claude-x", 4096)
    assert split_thinking_suffix("claude-x") == ("claude-x", None)
    model = resolve_model("anthropic:claude-x+thinking=4096", env={"ANTHROPIC_API_KEY": "k" * 8})
    assert isinstance(model, AnthropicModel)
    assert model.name == "anthropic:claude-x+thinking=4096"


def test_unknown_local_model_names_the_accepted_forms() -> None:
    local = default_registry().get("local")
    if not local.available():
        pytest.skip(f"local model not installed: {local.unavailable_reason()}")
    with pytest.raises(InvalidInput, match="local:smollm2"):
        resolve_model("local:gpt-5", env={})


def test_loading_the_registry_imports_no_vendor_sdk() -> None:
    code = (
        "import sys\n"
        "from branchwork.providers import default_registry\n"
        "default_registry().names()\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'llama_cpp') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
