"""`tt usage` and `tt budget`: what the town's agents cost, and the caps on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from tinytown.cli.common import Context, emit, emit_json, json_option, pass_ctx, print_table, say
from tinytown.core.errors import UsageError

if TYPE_CHECKING:
    from tinytown.ops.usage_budgets import Keep


@click.command()
@click.option("--agent", "agent_ref", help="Only this agent's rounds.")
@click.option("--task", "task_id", help="Only this task's rounds.")
@click.option("--since", help="From this long ago (30m, 12h, 2d) or this time (ISO 8601).")
@click.option("--by", type=click.Choice(["agent", "task", "role", "day"]), default="agent",
              show_default=True, help="Group the rounds by.")
@json_option
@pass_ctx
def usage(obj: Context, agent_ref: str | None, task_id: str | None, since: str | None,
          by: str, as_json: bool) -> None:
    """Tokens and cost of the town's rounds. A cost with `+?` leaves out rounds whose CLI
    reported no usage (or tokens with no price in [prices.<cli>])."""
    report = obj.town().usage(agent_ref, task_id, since, by)
    if as_json:
        emit_json(report)
        return
    rows = [[r["name"] or r["key"], str(r.get("rounds", 0)), str(r.get("input_tokens", 0)),
             str(r.get("cached_input_tokens", 0)), str(r.get("output_tokens", 0)),
             r["cost"]] for r in report["rows"]]
    t = report["total"]
    rows.append(["total", str(t.get("rounds", 0)), str(t.get("input_tokens", 0)),
                 str(t.get("cached_input_tokens", 0)), str(t.get("output_tokens", 0)),
                 t["cost"]])
    print_table(None, [by, "rounds", "input", "cached", "output", "cost"], rows)


@click.group()
def budget() -> None:
    """Caps on what agents and the town spend ([budget] in tinytown.toml, or set here)."""


@budget.command(name="show")
@json_option
@pass_ctx
def budget_show(obj: Context, as_json: bool) -> None:
    """The town's and each agent's budget and usage."""
    status = obj.town().budgets()
    if as_json:
        emit_json(status)
        return
    town = status["town"]
    say(f"town: spent {_spent(town['cost'], town['spent_usd'], town['budget_usd'])} of"
        f" {_caps(town)}; {town['spent_tokens']} tokens")
    print_table(None, ["agent", "spent", "tokens", "budget", "held"],
                [[a["name"], _spent(a["cost"], a["spent_usd"], a["budget_usd"]),
                  str(a["spent_tokens"]), _caps(a), a["hold"] or ""]
                 for a in status["agents"]])


def _spent(cost: str, usd: float, cap: float | None) -> str:
    """The cost as `Usage.cost_text` says it, with the digits its budget needs."""
    from tinytown.core.usage_rules import cost_usd_text

    if cost == "unknown":
        return cost
    return cost_usd_text(usd, cap) + ("+?" if cost.endswith("+?") else "")


def _caps(doc: dict[str, Any]) -> str:
    from tinytown.core.usage_rules import budget_text

    if doc.get("budget_tokens") is None:
        return budget_text(doc["budget_usd"])
    tokens = f"{doc['budget_tokens']} tokens"
    return tokens if doc["budget_usd"] is None else f"{budget_text(doc['budget_usd'])}, {tokens}"


def _tokens(value: str | None) -> int | None | Keep:
    from tinytown.ops.usage_budgets import KEEP

    if value is None:
        return KEEP
    if value.lower() == "none":
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"--tokens {value!r}: give a number of tokens, 1 or more (or `none`)")
    return int(value)


@budget.command(name="set")
@click.argument("target", metavar="AGENT|town")
@click.argument("usd", metavar="[USD|none]", required=False)
@click.option("--tokens", metavar="N|none",
              help="Cap its tokens (input, cached and output) too: for a CLI that reports"
                   " tokens but no cost.")
@json_option
@pass_ctx
def budget_set(obj: Context, target: str, usd: str | None, tokens: str | None,
               as_json: bool) -> None:
    """Cap an agent's cost (or the town's: `town`), in USD and/or tokens; `none`
    removes a cap. A held agent carries on after `tt resume`."""
    from tinytown.ops.usage_budgets import KEEP

    amount: float | None | Keep = KEEP
    if usd is None and tokens is None:
        raise UsageError("give an amount in USD, --tokens N, or both")
    if usd is not None:
        try:
            amount = None if usd.lower() == "none" else float(usd)
        except ValueError:
            raise UsageError(f"{usd!r} is not an amount in USD (or `none`)") from None
    result = obj.town().set_budget(target, amount, _tokens(tokens))
    emit(result, as_json, f"{result.get('agent') or 'town ' + str(result.get('town'))}: budget"
                          f" {_caps(result)}")
    if result["unpriced"] and isinstance(amount, float) and result["budget_tokens"] is None:
        say(f"tt: warning: the cost of {', '.join(result['unpriced'])} is unknown (its CLI"
            " reports no cost; [prices.<cli>] in tinytown.toml can price its tokens): a USD"
            f" budget does not hold it; a token budget does (`tt budget set {target}"
            " --tokens N`)", err=True)


COMMANDS = [usage, budget]
