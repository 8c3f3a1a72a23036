"""The structured last line by which a CLI without MCP asks a person (`QUESTION: ...`),
and the bounds of a question or an answer."""

from __future__ import annotations

import pytest

from tinytown.core.asking import checked, question_in
from tinytown.core.errors import MessageTooLarge, UsageError
from tinytown.core.models import MAX_MESSAGE_BYTES


@pytest.mark.parametrize(("output", "question"), [
    ("I looked around.\nQUESTION: which database?\n", "which database?"),
    ("QUESTION:   Postgres or MySQL?  \n\n  \n", "Postgres or MySQL?"),
    ("QUESTION: which one?\nthen I did it anyway", None),  # not the last line
    ("done\n", None), ("", None), ("QUESTION:   \n", None),
    ("question: lower case is prose\n", None),
])
def test_the_question_is_the_last_non_empty_line(output: str, question: str | None) -> None:
    assert question_in(output) == question


def test_bounds() -> None:
    assert checked("ok", "answer") == "ok"
    with pytest.raises(UsageError, match="the answer is empty"):
        checked(" \n", "answer")
    with pytest.raises(MessageTooLarge, match="1 MiB"):
        checked("x" * (MAX_MESSAGE_BYTES + 1), "question")
    with pytest.raises(UsageError, match="not valid UTF-8"):
        checked("caf\udce9", "answer")
