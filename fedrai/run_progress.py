"""Progress inside a round: events the ServerApp and ClientApps print, folded into one status line.

A round of the demo takes minutes; the round line comes only at its end. So the server loop
prints an event when it samples clients, gets their replies, runs server CAI and evaluates, and
each ClientApp prints one when its guard pass is done and one per local training step. The
events are ordinary output lines (``[fedrai:progress] {json}``): Flower's log stream brings the
ServerApp's and the Ray ClientApp actors' lines to ``fedrai run``, which folds them into a status
line in a terminal (sampled clients, guard pass, local steps done, evaluation, ETA) and shows
none of them anywhere else; they stay in ``flower.log``. A deployed site's events stay in its
own SuperNode log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from fedrai.evaluation.gate import point_steps

PREFIX = "[fedrai:progress] "


def emit(event: str, server_round: int, **fields: Any) -> None:
    """Print one progress event (flushed: the stream is read while the round goes on)."""
    print(PREFIX + json.dumps({"event": event, "round": server_round, **fields}), flush=True)


def parse(line: str) -> dict[str, Any] | None:
    """The event in a stream line (Ray prefixes actor lines with ``(ClientAppActor pid=N)``), or None."""
    at = line.find(PREFIX)
    if at < 0:
        return None
    try:
        event = json.loads(line[at + len(PREFIX) :])
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m" if hours else f"{minutes}m{s:02d}s" if minutes else f"{s}s"


@dataclass
class RunProgress:
    """What is known of the running round; :meth:`describe` is the status line."""

    num_rounds: int
    round: int = 0
    stage: str = "starting SuperLink and Ray"
    sampled: int = 0
    steps_per_client: int = 0
    guarded: set[str] = field(default_factory=set)
    steps: dict[str, int] = field(default_factory=dict)
    round_seconds: list[float] = field(default_factory=list)
    round_started: float | None = None

    def update(self, event: dict[str, Any], now: float | None = None) -> None:
        """Fold one event in (unknown events and stale rounds are ignored)."""
        now = time.monotonic() if now is None else now
        kind, server_round = event.get("event"), int(event.get("round", 0) or 0)
        if kind == "round":
            self.round, self.stage = server_round, "training"
            self.sampled = int(event.get("sampled", 0))
            self.steps_per_client = int(event.get("steps", 0))
            self.guarded, self.steps = set(), {}
            self.round_started = now
        elif server_round != self.round:
            return
        elif kind == "guard":
            self.guarded.add(str(event.get("client")))
        elif kind == "step":
            client = str(event.get("client"))
            self.steps[client] = max(self.steps.get(client, 0), int(event.get("step", 0)))
        elif kind == "replies":
            self.stage = f"aggregating {event.get('replies', 0)} replies"
        elif kind == "server_cai":
            self.stage = "server CAI"
        elif kind == "evaluate":  # a second evaluation: the gate refused the candidate, tries the aggregate
            adapter = str(event.get("adapter") or "")
            if (steps := point_steps(adapter)) is not None:
                adapter = f"point after {steps} server steps"
            self.stage = f"evaluating the {adapter} (candidate refused)" if adapter else "evaluating"

    def round_done(self, server_round: int, now: float | None = None) -> None:
        """A round line arrived: its wall time feeds the ETA (round 0, the baseline, does not)."""
        now = time.monotonic() if now is None else now
        if server_round > 0 and self.round_started is not None and server_round == self.round:
            self.round_seconds.append(now - self.round_started)
        self.round, self.stage, self.round_started = server_round, "done", None

    def eta(self, now: float | None = None) -> float | None:
        """Seconds to the end: mean round time x rounds left, less the running round's elapsed time."""
        if not self.round_seconds:
            return None
        now = time.monotonic() if now is None else now
        mean = sum(self.round_seconds) / len(self.round_seconds)
        running = self.round_started is not None
        left = self.num_rounds - self.round + (1 if running else 0)
        elapsed = now - self.round_started if self.round_started is not None else 0.0
        return max(0.0, left * mean - elapsed)

    def describe(self, now: float | None = None) -> str:
        if self.round_started is None:
            if self.stage == "done":
                parts = [f"round {self.round}/{self.num_rounds} done"]
            elif self.round == 0 and self.stage == "evaluating":
                parts = ["round 0: evaluating the base model"]
            else:
                parts = [self.stage]
        else:
            parts = [f"round {self.round}/{self.num_rounds}", f"{self.sampled} clients sampled"]
            if self.sampled:
                parts.append(f"guard {len(self.guarded)}/{self.sampled}")
            if self.steps_per_client and self.sampled:
                total = self.steps_per_client * self.sampled
                parts.append(f"local steps {sum(self.steps.values())}/{total}")
            if self.stage != "training":
                parts.append(self.stage)
        eta = self.eta(now)
        if eta is not None:  # known once a round has finished
            parts.append(f"ETA {_duration(eta)}")
        return " · ".join(parts)
