"""Safety screening of each client's update on the server, before it is aggregated.

Geometry-based robust aggregators (Krum, median, trimmed mean) cannot tell a harmful update
from a benign one of the same size. This screen looks at behaviour instead, cheaply enough for
every client every round: the server loads each candidate adapter (the reply, i.e. global adapter
plus that client's update) and scores the probe set (``screening.probes``) teacher-forced, with
no generation:

- ``margin``: mean over red-team probes of log P(refusal) - log P(compliant answer), per token;
  a client that fine-tunes on harmful answers moves it down;
- ``margin_t``: the paired t statistic of the per-probe margin changes against the reference's
  (``screen.signal = "margin_t"``): honest updates move single probes' margins both ways, a
  harmful update lowers most of them;
- ``benign_loss``: response loss on benign probes (a broken or degrading update moves it up).

Each candidate's change against the reference (the current global adapter, or the round's median
candidate) decides the flag; the policy (report / downweight / exclude) is applied by the guard
(``strategies.guard``). Only numbers leave this module: the figures go into the metrics rows
under the client's partition or node id.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from flwr.app import ArrayRecord

from fedrai.config.defences import ScreenConfig
from fedrai.data import Row
from fedrai.evaluation.generation import response_loss, shared_context_logprobs
from fedrai.model import get_adapter_state, set_adapter_state
from fedrai.screening.probes import ProbeSet
from fedrai.transport import from_arrays


@dataclass(frozen=True)
class ProbeScores:
    margin: float  # nats per token: refusal over compliance, mean over red-team probes
    benign_loss: float  # nats per token; NaN without benign probes
    margins: tuple[float, ...] = ()  # per red-team probe (empty for a median reference with no candidates)


@dataclass(frozen=True)
class ScreenResult:
    client: int
    scores: ProbeScores
    margin_change: float
    benign_loss_change: float
    flagged: bool
    margin_t: float = 0.0  # paired t statistic of the per-probe margin changes (0 when undefined)


def paired_t(values: tuple[float, ...], reference: tuple[float, ...]) -> float:
    """t statistic of the paired differences ``values - reference`` (0 with fewer than 2 or no spread)."""
    diffs = [v - r for v, r in zip(values, reference, strict=True)]
    if len(diffs) < 2:
        return 0.0
    sd = statistics.stdev(diffs)
    return statistics.fmean(diffs) / (sd / math.sqrt(len(diffs))) if sd > 0 else 0.0


class UpdateScreen:
    """Scores candidate adapters on the server's model; restores the model's adapter afterwards."""

    def __init__(
        self, cfg: ScreenConfig, model: Any, tokenizer: Any, probes: ProbeSet, max_seq_length: int = 512
    ):
        if not probes.redteam:
            raise ValueError("update screening needs at least one red-team probe")
        self.cfg = cfg
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        # Answers (benign reference answers too) are cut to ``max_answer_tokens``: their first tokens
        # carry the signal (a refusal or not), the rest only adds cost.
        self.benign: list[Row] = [
            {**row, "response": self._truncate(row["response"])} for row in probes.benign
        ]
        self.conversations = [[{"role": "user", "content": p.prompt}] for p in probes.redteam]
        self.answers = [(self._truncate(p.refusal), self._truncate(p.compliance)) for p in probes.redteam]
        self.seconds = 0.0  # time spent in the last ``screen`` call

    def _truncate(self, text: str) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.cfg.max_answer_tokens]
        return self.tokenizer.decode(ids)

    def scores(self) -> ProbeScores:
        """The probe figures of the model's current adapter.

        Each red-team prompt runs once: its refusal and compliant answer are scored on its KV cache.
        """
        pairs = shared_context_logprobs(
            self.model,
            self.tokenizer,
            self.conversations,
            self.answers,
            batch_size=self.cfg.batch_size,
            max_tokens=self.max_seq_length,
        )
        margins = tuple(refuse.per_token - comply.per_token for refuse, comply in pairs)
        loss = (
            response_loss(
                self.model,
                self.tokenizer,
                self.benign,
                self.cfg.batch_size,
                max_seq_length=self.max_seq_length,
            )
            if self.benign
            else float("nan")
        )
        return ProbeScores(statistics.fmean(margins), loss, margins)

    def screen(
        self, global_arrays: ArrayRecord, candidates: list[tuple[int, ArrayRecord]]
    ) -> list[ScreenResult]:
        """Score each ``(client, adapter)`` and the reference; flag by the configured thresholds.

        The global adapter is scored once a round, and only when it is the reference
        (``reference = "global"``); the round's median candidate needs no extra pass.
        """
        t0 = time.perf_counter()
        saved = {k: v.detach().clone() for k, v in get_adapter_state(self.model).items()}
        reference = ProbeScores(float("nan"), float("nan"))
        try:
            if self.cfg.reference == "global" or not candidates:
                set_adapter_state(self.model, from_arrays(global_arrays))
                reference = self.scores()
            scored = []
            for client, arrays in candidates:
                set_adapter_state(self.model, from_arrays(arrays))
                scored.append((client, self.scores()))
        finally:
            set_adapter_state(self.model, saved)
        if self.cfg.reference == "round_median" and scored:
            reference = ProbeScores(
                statistics.median(s.margin for _, s in scored),
                statistics.median(s.benign_loss for _, s in scored),
                tuple(statistics.median(per) for per in zip(*(s.margins for _, s in scored), strict=True)),
            )
        results = [self._judge(client, s, reference) for client, s in scored]
        self.seconds = time.perf_counter() - t0
        return results

    def _judge(self, client: int, s: ProbeScores, ref: ProbeScores) -> ScreenResult:
        margin_change = s.margin - ref.margin
        loss_change = s.benign_loss - ref.benign_loss
        margin_t = paired_t(s.margins, ref.margins) if len(ref.margins) == len(s.margins) else 0.0
        if self.cfg.signal == "margin_t":
            flagged = margin_t < -self.cfg.max_margin_t
        else:
            flagged = margin_change < -self.cfg.max_margin_drop
        if self.cfg.max_benign_loss_increase > 0 and loss_change == loss_change:  # not NaN
            flagged = flagged or loss_change > self.cfg.max_benign_loss_increase
        return ScreenResult(client, s, margin_change, loss_change, flagged, margin_t)


def build_update_screen(cfg: Any, model: Any, tokenizer: Any) -> UpdateScreen | None:
    """The screen of an ``ExperimentConfig`` (None when ``screen.enabled`` is false)."""
    if not cfg.screen.enabled:
        return None
    from fedrai.screening.probes import build_probe_set

    with torch.no_grad():
        probes = build_probe_set(cfg)
    return UpdateScreen(cfg.screen, model, tokenizer, probes, max_seq_length=cfg.model.max_seq_length)
