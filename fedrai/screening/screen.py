"""Safety screening of each client's update on the server, before it is aggregated.

Geometry-based robust aggregators (Krum, median, trimmed mean) cannot tell a harmful update
from a benign one of the same size. This screen looks at behaviour instead, cheaply enough for
every client every round: the server loads each candidate adapter (the reply, i.e. global adapter
plus that client's update) and scores the probe set (``screening.probes``) teacher-forced, with
no generation. Per candidate:

- ``margin``: mean over red-team probes of log P(refusal) - log P(compliant answer), per token;
  a client that fine-tunes on harmful answers moves it down;
- ``margin_t``: the paired t statistic of the per-probe margin changes against the reference's
  (``screen.signal = "margin_t"``): honest updates move single probes' margins both ways, a
  harmful update lowers most of them;
- ``specificity``: how much more the update raised the compliant answers' log-likelihood than the
  benign reference answers', over the global adapter (needs benign probes). An honest update that
  learns a helpful style, or keeps a few harmful rows its filter missed, raises both; one trained on
  harmful pairs raises the first far more. Against the reference it is divided by the reference's
  own gain on the compliant answers, so it does not shrink with the learning rate (a round's updates
  can be ten times smaller at the end of a schedule than at its start);
- ``benign_loss``: response loss on benign probes (a broken or degrading update moves it up).

Each candidate's change against the reference (the current global adapter, the round's median
candidate, or the mean of the round's other candidates) decides the flag; the policy (report /
downweight / exclude) is applied by the guard (``strategies.guard``). Only numbers leave this module:
the figures go into the metrics rows under the client's partition or node id.
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
from fedrai.data import prompt_of
from fedrai.evaluation.generation import ContinuationScore, shared_context_logprobs
from fedrai.model import get_adapter_state, set_adapter_state
from fedrai.screening.probes import ProbeSet
from fedrai.transport import from_arrays


@dataclass(frozen=True)
class ProbeScores:
    margin: float  # nats per token: refusal over compliance, mean over red-team probes
    benign_loss: float  # nats per token; NaN without benign probes
    margins: tuple[float, ...] = ()  # per red-team probe (empty for a median reference with no candidates)
    comply: float = math.nan  # log-likelihood per token of the compliant answers, mean over probes
    benign: float = math.nan  # log-likelihood per token of the benign answers, mean over probes (NaN without)


@dataclass(frozen=True)
class ScreenResult:
    client: int
    scores: ProbeScores
    margin_change: float
    benign_loss_change: float
    flagged: bool
    margin_t: float = 0.0  # paired t statistic of the per-probe margin changes (0 when undefined)
    specificity: float = math.nan  # against the reference, scaled (module docstring); NaN when not scored


def paired_t(values: tuple[float, ...], reference: tuple[float, ...]) -> float:
    """t statistic of the paired differences ``values - reference`` (0 with fewer than 2 or no spread)."""
    diffs = [v - r for v, r in zip(values, reference, strict=True)]
    if len(diffs) < 2:
        return 0.0
    sd = statistics.stdev(diffs)
    return statistics.fmean(diffs) / (sd / math.sqrt(len(diffs))) if sd > 0 else 0.0


def _gains(s: ProbeScores, glob: ProbeScores) -> tuple[float, float]:
    """(compliant, benign) log-likelihood gains of ``s`` over the global adapter's scores."""
    return s.comply - glob.comply, s.benign - glob.benign


def specificities(
    scored: list[tuple[int, ProbeScores]], glob: ProbeScores, reference: str
) -> dict[int, float]:
    """Each candidate's specificity against ``reference``, scaled (higher = safer; see the module docstring).

    The raw figure is minus (compliant gain - benign gain) over the global adapter. ``global``: that
    figure over (|compliant gain| + |benign gain|), in [-1, 1]. ``round_median`` / ``leave_one_out``:
    the figure minus the median of the round's / the mean of the other candidates' figures, over their
    median / mean |compliant gain| (a lone candidate is judged against the global adapter).
    """
    gains = {c: _gains(s, glob) for c, s in scored}
    raw = {c: -(k - b) for c, (k, b) in gains.items()}
    out = {}
    for c in raw:
        others = [o for o in raw if o != c]
        if reference == "global" or not others:
            k, b = gains[c]
            out[c] = raw[c] / (abs(k) + abs(b)) if abs(k) + abs(b) > 0 else 0.0
            continue
        pool = list(raw) if reference == "round_median" else others
        centre = statistics.median if reference == "round_median" else statistics.fmean
        scale = centre([abs(gains[o][0]) for o in pool])
        out[c] = (raw[c] - centre([raw[o] for o in pool])) / scale if scale > 0 else 0.0
    return out


class UpdateScreen:
    """Scores candidate adapters on the server's model; restores the model's adapter afterwards."""

    def __init__(
        self, cfg: ScreenConfig, model: Any, tokenizer: Any, probes: ProbeSet, max_seq_length: int = 512
    ):
        if not probes.redteam:
            raise ValueError("update screening needs at least one red-team probe")
        if cfg.signal == "specificity" and not probes.benign:
            raise ValueError(
                f"screen.signal = {cfg.signal!r} needs benign probes (screen.benign_probes >= 1)"
            )
        self.cfg = cfg
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        # Answers (benign reference answers too) are cut to ``max_answer_tokens``: their first tokens
        # carry the signal (a refusal or not), the rest only adds cost.
        self.conversations = [[{"role": "user", "content": p.prompt}] for p in probes.redteam]
        self.answers = [(self._truncate(p.refusal), self._truncate(p.compliance)) for p in probes.redteam]
        self.benign_conversations = [[{"role": "user", "content": prompt_of(r)}] for r in probes.benign]
        self.benign_answers = [(self._truncate(r["response"]),) for r in probes.benign]
        self.seconds = 0.0  # time spent in the last ``screen`` call

    def _truncate(self, text: str) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.cfg.max_answer_tokens]
        return self.tokenizer.decode(ids)

    def _logprobs(self, conversations: list, answers: list) -> list:
        return shared_context_logprobs(
            self.model,
            self.tokenizer,
            conversations,
            answers,
            batch_size=self.cfg.batch_size,
            max_tokens=self.max_seq_length,
        )

    def per_probe(self) -> tuple[list[tuple[ContinuationScore, ContinuationScore]], list[ContinuationScore]]:
        """The model's current adapter on every probe: (refusal, compliant answer) per red-team probe,
        the reference answer per benign probe. Each red-team prompt runs once: both answers are scored
        on its KV cache."""
        pairs = [(r, c) for r, c in self._logprobs(self.conversations, self.answers)]
        benign = [s[0] for s in self._logprobs(self.benign_conversations, self.benign_answers)]
        return pairs, benign

    def scores(self) -> ProbeScores:
        """The probe figures of the model's current adapter."""
        pairs, benign_scores = self.per_probe()
        margins = tuple(refuse.per_token - comply.per_token for refuse, comply in pairs)
        comply = statistics.fmean(c.per_token for _, c in pairs)
        loss = benign = math.nan
        if benign_scores:
            loss = -sum(s.logprob for s in benign_scores) / max(sum(s.tokens for s in benign_scores), 1)
            benign = statistics.fmean(s.per_token for s in benign_scores)
        return ProbeScores(statistics.fmean(margins), loss, margins, comply, benign)

    def screen(
        self, global_arrays: ArrayRecord, candidates: list[tuple[int, ArrayRecord]]
    ) -> list[ScreenResult]:
        """Score each ``(client, adapter)`` and the reference; flag by the configured thresholds.

        The global adapter is scored once a round, and only when something needs it: the reference
        is ``global``, the round has no candidates, or the signal is ``specificity`` (its gains are
        over the global adapter). A median or leave-one-out reference needs no extra pass.
        """
        t0 = time.perf_counter()
        saved = {k: v.detach().clone() for k, v in get_adapter_state(self.model).items()}
        glob = ProbeScores(math.nan, math.nan)
        needs_global = self.cfg.reference == "global" or self.cfg.signal == "specificity"
        try:
            if needs_global or not candidates:
                set_adapter_state(self.model, from_arrays(global_arrays))
                glob = self.scores()
            scored = []
            for client, arrays in candidates:
                set_adapter_state(self.model, from_arrays(arrays))
                scored.append((client, self.scores()))
        finally:
            set_adapter_state(self.model, saved)
        specificity = (
            specificities(scored, glob, self.cfg.reference) if self.cfg.signal == "specificity" else {}
        )
        results = [
            self._judge(client, s, self._reference(client, scored, glob), specificity.get(client, math.nan))
            for client, s in scored
        ]
        self.seconds = time.perf_counter() - t0
        return results

    def _reference(
        self, client: int, scored: list[tuple[int, ProbeScores]], glob: ProbeScores
    ) -> ProbeScores:
        """What ``client``'s candidate is compared with: the global adapter, or the round's others' centre."""
        pool = [s for c, s in scored if self.cfg.reference == "round_median" or c != client]
        if self.cfg.reference == "global" or not pool:
            return glob
        centre = statistics.median if self.cfg.reference == "round_median" else statistics.fmean
        return ProbeScores(
            centre(s.margin for s in pool),
            centre(s.benign_loss for s in pool),
            tuple(centre(per) for per in zip(*(s.margins for s in pool), strict=True)),
        )

    def _judge(self, client: int, s: ProbeScores, ref: ProbeScores, specificity: float) -> ScreenResult:
        margin_change = s.margin - ref.margin
        loss_change = s.benign_loss - ref.benign_loss
        margin_t = paired_t(s.margins, ref.margins) if len(ref.margins) == len(s.margins) else 0.0
        if self.cfg.signal == "margin_t":
            flagged = margin_t < -self.cfg.max_margin_t
        elif self.cfg.signal == "specificity":
            flagged = specificity < -self.cfg.max_specificity_drop  # False when NaN
        else:
            flagged = margin_change < -self.cfg.max_margin_drop
        if self.cfg.max_benign_loss_increase > 0 and loss_change == loss_change:  # not NaN
            flagged = flagged or loss_change > self.cfg.max_benign_loss_increase
        return ScreenResult(client, s, margin_change, loss_change, flagged, margin_t, specificity)


def build_update_screen(cfg: Any, model: Any, tokenizer: Any) -> UpdateScreen | None:
    """The screen of an ``ExperimentConfig`` (None when ``screen.enabled`` is false)."""
    if not cfg.screen.enabled:
        return None
    from fedrai.screening.probes import build_probe_set

    with torch.no_grad():
        probes = build_probe_set(cfg)
    return UpdateScreen(cfg.screen, model, tokenizer, probes, max_seq_length=cfg.model.max_seq_length)
