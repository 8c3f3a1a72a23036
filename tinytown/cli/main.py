"""`tt`: the command group, its commands by topic, and error handling.

Each command lives in its topic's module (cli/town.py, cli/agents.py, ...), imported
only when that command runs or `tt --help` lists it: `tt send` loads cli/messages.py
and none of the others. Errors are TinytownError subclasses, printed as one line on
stderr with their exit code; nothing here holds logic the API lacks.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import import_module

import click

from tinytown.cli.common import Context, say
from tinytown.core.errors import TinytownError, one_line

# The help's sections, in order, and each command's place in them (as `gh` and
# `docker` group theirs); a command in no section is listed under "Other".
SECTIONS = {
    "Town": ("init", "up", "down", "status", "supervisor", "doctor", "migrate", "reset"),
    "Agents": ("spawn", "list", "show", "worker"),
    "Messages": ("send", "inbox", "reply"),
    "Tasks": ("assign", "task", "backlog"),
    "Missions": ("mission", "plan", "approve", "reject", "review"),
    "Control": ("interrupt", "resume", "close", "kill", "restart", "wait", "stop", "prune"),
    "Monitoring": ("events", "history", "logs", "flower"),
    "Recovery": ("recover", "reclaim", "save", "restore"),
    "Spend": ("usage", "budget"),
    "Hosts": ("host", "hosts"),
    "Git": ("diff", "merge", "branch"),
    "Serve": ("serve", "auth", "mcp"),
}

# Which module defines each command: imported when the command runs.
LAZY_COMMANDS = {
    **dict.fromkeys(("init", "up", "down", "status", "supervisor", "migrate", "reset"),
                    "tinytown.cli.town"),
    "doctor": "tinytown.cli.doctor",
    **dict.fromkeys(("spawn", "list", "show", "worker"), "tinytown.cli.agents"),
    **dict.fromkeys(("send", "inbox"), "tinytown.cli.messages"),
    "reply": "tinytown.cli.questions",
    **dict.fromkeys(("assign", "task", "review", "backlog"), "tinytown.cli.tasks"),
    **dict.fromkeys(("mission", "plan"), "tinytown.cli.missions"),
    **dict.fromkeys(("approve", "reject"), "tinytown.cli.approvals"),
    **dict.fromkeys(("interrupt", "resume", "close", "kill", "restart", "wait", "stop",
                     "prune"), "tinytown.cli.control"),
    **dict.fromkeys(("events", "history", "logs", "flower"), "tinytown.cli.monitor"),
    **dict.fromkeys(("recover", "reclaim", "save", "restore"), "tinytown.cli.recovery"),
    **dict.fromkeys(("usage", "budget"), "tinytown.cli.usage"),
    **dict.fromkeys(("host", "hosts"), "tinytown.cli.hosts"),
    **dict.fromkeys(("diff", "merge", "branch"), "tinytown.cli.git"),
    **dict.fromkeys(("serve", "auth", "mcp"), "tinytown.cli.serve"),
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = LAZY_COMMANDS.get(name)
        if module is not None and name not in self.commands:
            for command in import_module(module).COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands by topic, one section each, their names in one column."""
        names = self.list_commands(ctx)
        placed = {n for section in SECTIONS.values() for n in section}
        sections = [*SECTIONS.items(), ("Other", tuple(n for n in names if n not in placed))]
        width = max(map(len, names))
        limit = formatter.width - 6 - width
        for title, section in sections:
            rows = []
            for name in section:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name.ljust(width), command.get_short_help_str(limit)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--town", "town_path", metavar="PATH", envvar="TINYTOWN_TOWN_ROOT",
    help="The town's folder (default: nearest tinytown.toml upwards).",
)
@click.version_option(package_name="tinytown", prog_name="tt")
@click.pass_context
def cli(ctx: click.Context, town_path: str | None) -> None:
    """Tinytown: coordinate AI coding agents through Redis and Celery."""
    ctx.obj = Context(town_path)


class _Once(logging.Filter):
    """A command may read a bad record several times: warn about it once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Once())
    handler.setFormatter(logging.Formatter("tt: warning: %(message)s"))
    logger = logging.getLogger("tinytown")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    _setup_logging()
    try:
        code = cli.main(args=argv, prog_name="tt", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's word for Ctrl-C (and end of input)
        if isinstance(exc.__cause__, KeyboardInterrupt):
            say("tt: interrupted", err=True)
            sys.exit(130)
        say("tt: aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:  # one line, like every other error
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        say(f"tt: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        say(f"tt: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except TinytownError as exc:
        say(f"tt: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("tt: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug: still one line (TT_DEBUG=1 shows the traceback)
        if os.environ.get("TT_DEBUG"):
            raise
        say(f"tt: unexpected {type(exc).__name__}: {one_line(str(exc))} (set TT_DEBUG=1 for"
            " the traceback, and please report it)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
