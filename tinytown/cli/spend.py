"""`tt usage` and `tt budget`: what the town's agents cost, and the caps on it."""

from __future__ import annotations

import click

from tinytown.cli.common import Context, emit_json, json_option, pass_ctx, print_table, say


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
    """The town's and each agent's budget and spend."""
    status = obj.town().budgets()
    if as_json:
        emit_json(status)
        return
    town = status["town"]
    say(f"town: spent {town['cost']} of {_cap(town['budget_usd'])}")
    print_table(None, ["agent", "spent", "budget", "held"],
                [[a["name"], a["cost"], _cap(a["budget_usd"]), a["hold"] or ""]
                 for a in status["agents"]])


@budget.command(name="set")
@click.argument("target", metavar="AGENT|town")
@click.argument("usd", metavar="USD|none")
@json_option
@pass_ctx
def budget_set(obj: Context, target: str, usd: str, as_json: bool) -> None:
    """Cap an agent's spend (or the town's: `town`); `none` removes the cap. A held agent
    carries on after `tt resume`."""
    from tinytown.errors import UsageError

    try:
        amount = None if usd.lower() == "none" else float(usd)
    except ValueError:
        raise UsageError(f"{usd!r} is not an amount in USD (or `none`)") from None
    result = obj.town().set_budget(target, amount)
    if as_json:
        emit_json(result)
    else:
        say(f"{result.get('agent') or 'town ' + str(result.get('town'))}: budget"
            f" {_cap(result['budget_usd'])}")


def _cap(value: float | None) -> str:
    return "none" if value is None else f"${value:.2f}"


COMMANDS = [usage, budget]
