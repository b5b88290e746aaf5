"""What a model call costs: a price table shipped in the package (`prices.toml`), overridable.

Prices are US dollars per million tokens (input, cached input, output). A model matches the
longest key its name starts with; a model with no price has no cost (None: unknown), which the
accounting shows as such rather than as free.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from branchwork.domain.errors import InvalidInput
from branchwork.domain.messages import Usage

PER = 1_000_000


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float | None = None

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        fresh = usage.input_tokens - cached
        return (
            fresh * self.input + cached * cached_price + usage.output_tokens * self.output
        ) / PER


class PriceTable:
    def __init__(self, prices: dict[str, Price]) -> None:
        self._keys = sorted(prices, key=len, reverse=True)
        self._prices = prices

    def price(self, model: str) -> Price | None:
        name = model.lower()
        return next((self._prices[k] for k in self._keys if name.startswith(k.lower())), None)

    def cost(self, model: str, usage: Usage) -> float | None:
        price = self.price(model)
        return None if price is None else price.cost(usage)


def load_prices(override: Path | None = None) -> PriceTable:
    """The packaged prices, with those of `override` (a TOML file of the same shape) on top."""
    table = dict(_packaged())
    if override is not None:
        table.update(_parse(_read(override), str(override)))
    return PriceTable(table)


@cache
def _packaged() -> dict[str, Price]:
    text = resources.files("branchwork.providers").joinpath("prices.toml").read_text("utf-8")
    return _parse(text, "the packaged prices.toml")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the prices file {path}: {exc.strerror}; fix the path"
        ) from exc


def _parse(text: str, where: str) -> dict[str, Price]:
    try:
        data = tomllib.loads(text)
        return {name: Price(**entry) for name, entry in data.items()}
    except (tomllib.TOMLDecodeError, TypeError) as exc:
        raise InvalidInput(
            f"{where} is not a price table ({exc}); give each model input and output prices "
            "per million tokens, e.g. ['openai:gpt-4o'] input = 2.5, output = 10.0"
        ) from exc
