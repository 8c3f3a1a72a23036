"""Questions to a person, the pure part: the structured last line by which an agent CLI
without Tinytown's MCP tools asks (`QUESTION: ...`), and the bounds of a question and
an answer. The records' side is tinytown/db/question_store.py."""

from __future__ import annotations

from tinytown.core.errors import MessageTooLarge, UsageError
from tinytown.core.message_bodies import MAX_MESSAGE_BYTES
from tinytown.core.validate import utf8_size

PREFIX = "QUESTION:"


def question_in(output: str) -> str | None:
    """The question a round's result ends with (its last non-empty line is
    `QUESTION: text`), else None."""
    for line in reversed(output.splitlines()):
        if line.strip():
            found = line.strip()
            if found.startswith(PREFIX) and found[len(PREFIX):].strip():
                return found[len(PREFIX):].strip()
            return None
    return None


def checked(text: str, what: str) -> str:
    """A question or an answer as stored: not empty, UTF-8, at most 1 MiB (as messages)."""
    if not text.strip():
        raise UsageError(f"the {what} is empty")
    size = utf8_size(text)
    if size > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"the {what} is {size} bytes; the limit is {MAX_MESSAGE_BYTES}"
                              " (1 MiB)")
    return text
