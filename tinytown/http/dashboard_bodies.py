"""The dashboard's reads as pydantic models (beside tinytown/http/schemas.py): the key a
request was made with, and an agent's round logs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tinytown.http.schemas import Timestamp, Uuid


class WhoAmI(BaseModel):
    """The key a request was made with (never the key itself)."""

    name: str
    scope: Literal["read", "write", "admin"]
    town: str = Field(description="The town this server serves")


class RoundLogFile(BaseModel):
    round: int = Field(ge=0)
    bytes: int = Field(ge=0)
    modified: Timestamp


class RoundLog(BaseModel):
    """An agent's round logs on the serving machine (where its worker ran; another
    machine's are not seen) and the tail of one (`tt logs`)."""

    agent: Uuid
    name: str
    rounds: list[RoundLogFile] = Field(description="The newest rounds' logs, oldest first")
    round: int | None = Field(description="The round whose log `text` ends (none yet: null)")
    truncated: bool = Field(description="`text` is the log's end, not all of it")
    text: str = Field(description="The log's last 64 KiB, as the agent CLI wrote it")
