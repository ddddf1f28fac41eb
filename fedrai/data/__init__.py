"""Client data: loading with bad-row accounting, partitioning, harmful mixing, formatting.

A *row* is one training example, the unit the guards screen and the trainer consumes::

    {"id": "train.jsonl:17",          # stable: where it came from (file:line or source:index)
     "messages": [{"role": "user", "content": "..."}],   # the conversation before the answer
     "response": "...",               # the assistant answer that is trained on
     "origin": "benign" | "harmful",  # ground truth of the source; for metrics, never for filtering
     "group": "..."}                  # label that a Dirichlet split skews (e.g. a dataset name)
"""

from __future__ import annotations

from typing import TypedDict


class Message(TypedDict):
    role: str
    content: str


class Row(TypedDict):
    id: str
    messages: list[Message]
    response: str
    origin: str
    group: str


def prompt_of(row: Row) -> str:
    """The last user turn: what a safety filter judges as 'the prompt'."""
    for message in reversed(row["messages"]):
        if message["role"] == "user":
            return message["content"]
    return ""
