"""What rounds cost: tokens and money, per round, summed per task, agent and town.

A round's usage comes from its CLI's own report (`tinytown.core.outcomes`): input, cached
input and output tokens, and the cost in USD where the CLI reports it. Where it reports
tokens but no cost, `[prices.<cli>]` in tinytown.toml turns them into money; where it
reports nothing, the round's usage is unknown: counted as such, never as 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from tinytown.core.settings import BudgetSettings

TOKEN_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens")
ROUND_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)  # seconds: /metrics' histogram


class Usage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Tokens and cost of some rounds. `input_tokens` are the uncached ones;
    `unknown_rounds` reported nothing, `uncosted_rounds` tokens without a price."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    rounds: int = 0
    unknown_rounds: int = 0
    uncosted_rounds: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f: getattr(self, f) + getattr(other, f)
                        for f in self.__struct_fields__})

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.cached_input_tokens + self.output_tokens

    @property
    def cost_known(self) -> bool:
        """Whether `cost_usd` is the whole cost (no round without a report or a price)."""
        return not (self.unknown_rounds or self.uncosted_rounds)

    def cost_text(self) -> str:
        """`$0.0123` (`cost_usd_text`), with `+?` when some rounds' cost is not known;
        `unknown` if none is."""
        if self.rounds and self.unknown_rounds + self.uncosted_rounds >= self.rounds:
            return "unknown"
        text = cost_usd_text(self.cost_usd)
        return text if self.cost_known else f"{text}+?"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


MAX_PLACES = 10  # a budget of $0.0000000001 is as fine as money here gets


def places(usd: float) -> int:
    """How many decimal places `usd` needs to be shown as given (0.001: 3; 5: 0)."""
    text = f"{usd:.{MAX_PLACES}f}".rstrip("0")
    return len(text) - text.index(".") - 1


def budget_text(usd: float | None) -> str:
    """A budget with the precision it was given: `$5.00`, `$0.001`, `none`. (Rounded
    to cents, `tt budget set backend 0.001` read back as `$0.00`.)"""
    if usd is None:
        return "none"
    return f"${usd:.{max(2, places(usd))}f}"


def cost_usd_text(usd: float, budget: float | None = None) -> str:
    """A cost in USD: 4 places, one more than its budget shows, and at least 2 significant
    digits of a small amount ($0.000012, not $0.0000)."""
    digits = max(4, places(budget) + 1 if budget is not None else 0)
    if 0 < usd < 1:
        leading = len(f"{usd:.{MAX_PLACES + 2}f}".split(".")[1]) - len(
            f"{usd:.{MAX_PLACES + 2}f}".split(".")[1].lstrip("0"))
        digits = max(digits, min(leading + 2, MAX_PLACES + 2))
    return f"${usd:.{digits}f}"


def agent_budget_usd(own: float | None, defaults: BudgetSettings) -> float | None:
    """The agent's USD budget in force: its own (`tt budget set AGENT`), else
    tinytown.toml's `[budget] agent_usd`; None: no cap."""
    return own if own is not None else defaults.agent_usd


def town_budget_usd(recorded: float | None, defaults: BudgetSettings) -> float | None:
    """The town's USD budget in force: the one recorded by `tt budget set town`, else
    tinytown.toml's `[budget] town_usd`; None: no cap."""
    return recorded if recorded is not None else defaults.town_usd


def as_usage(value: Any) -> Usage:
    """A stored usage document (None or anything unreadable: no usage)."""
    if isinstance(value, Usage):
        return value
    try:
        return msgspec.convert(value or {}, Usage, strict=False)
    except msgspec.ValidationError:
        return Usage()


def of_round(reported: dict[str, Any] | None, price: dict[str, float] | None) -> Usage:
    """One round's usage from its CLI's normalized report (None: it reported nothing)."""
    if not reported or not any(k in reported for k in (*TOKEN_FIELDS, "cost_usd")):
        return Usage(rounds=1, unknown_rounds=1)
    usage = Usage(rounds=1, **{k: max(0, int(reported.get(k) or 0)) for k in TOKEN_FIELDS})
    cost = reported.get("cost_usd")
    if isinstance(cost, int | float) and cost == cost and cost >= 0:  # not NaN
        usage.cost_usd = float(cost)
    elif price:
        usage.cost_usd = sum(usage_tokens * price.get(key.removesuffix("_tokens"), 0.0)
                             for key, usage_tokens in _token_items(usage)) / 1_000_000
    else:
        usage.uncosted_rounds = 1
    return usage


def _token_items(usage: Usage) -> list[tuple[str, int]]:
    return [(k, getattr(usage, k)) for k in TOKEN_FIELDS]


def since_session_start(reported: dict[str, Any], before: dict[str, Any] | None
                        ) -> dict[str, Any]:
    """A CLI that reports a resumed session's totals: this run's part of them."""
    if not before:
        return reported
    out = dict(reported)
    for key in TOKEN_FIELDS:
        if isinstance(reported.get(key), int) and isinstance(before.get(key), int):
            out[key] = max(0, reported[key] - before[key])
    return out
