"""Default 1920s nicknames, derived from an agent's UUID by the rule in the data file."""

from __future__ import annotations

import json
import uuid
from functools import cache
from importlib import resources
from typing import Any


@cache
def _data() -> dict[str, Any]:
    text = resources.files("tinytown.data").joinpath("nicknames-1920s.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def default_nickname(agent_id: str) -> str:
    """index = (b[0]*256 + b[1]) % 400; below 200 a boy's name, else a girl's."""
    raw = uuid.UUID(agent_id).bytes
    index = (raw[0] * 256 + raw[1]) % 400
    data = _data()
    return str(data["boys"][index] if index < 200 else data["girls"][index - 200])
