"""Server-side evaluation of the global model after every round (Flower's ``evaluate_fn``).

Built once per run: the prompt sets are read and the subsets drawn at construction, so every round
scores the same seeded AdvBench and benign prompts and the per-round curves are comparable. After
the last round ``final=True`` scores the larger final sets (all 520 AdvBench behaviours by
default, all 221 HHH examples) under ``final.``-prefixed keys. HHH scores answer log-likelihoods
(no generation); the MT-Bench judge, when on, answers and sends the answers to an endpoint.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fedrai.config import ConfigError
from fedrai.data import Row
from fedrai.evaluation.advbench import load_advbench_goals, load_benign_prompts
from fedrai.evaluation.generation import generate, response_loss
from fedrai.evaluation.hhh import HHHExample, load_hhh, score_hhh
from fedrai.evaluation.mtbench import answer_questions, build_judge, judge_answers, load_mtbench_questions
from fedrai.evaluation.scorers import (
    SupportsScore,
    is_refusal,
    is_refusal_openfedllm,
    judge_safe,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

    from fedrai.chat_endpoint import ChatEndpoint
    from fedrai.config import ExperimentConfig

log = logging.getLogger(__name__)
T = TypeVar("T")


def seeded_subset(items: Sequence[T], k: int, seed: int) -> list[T]:
    """``k`` items drawn with ``seed``, kept in source order; a larger ``k`` gives a superset."""
    k = min(k, len(items))
    picked = random.Random(seed).sample(range(len(items)), len(items))[:k]
    return [items[i] for i in sorted(picked)]


def seeded_round_and_final(
    items: Sequence[T], per_round: int, final: int, seed: int, *, disjoint: bool, name: str
) -> tuple[list[T], list[T]]:
    """The per-round and final subsets of ``items``: nested (final a superset) or, with ``disjoint``, the
    final set drawn from the items the per-round set leaves out. Same per-round prompts either way."""
    per_round_set = seeded_subset(items, per_round, seed)
    if not disjoint:
        return per_round_set, seeded_subset(items, final, seed)
    if per_round + final > len(items) and final:
        raise ConfigError(
            f"eval.disjoint_final: the {name} set needs {per_round} per-round + {final} final prompts, "
            f"but its source has {len(items)}; lower eval.{name}_per_round or eval.{name}_final"
        )
    order = random.Random(seed).sample(range(len(items)), len(items))
    rest = sorted(order[per_round : per_round + final])
    return per_round_set, [items[i] for i in rest]


class ServerEvaluator:
    """AdvBench refusal (+ judge), benign and safe-alarming over-refusal, HHH accuracy, held-out loss
    and (with a judge endpoint) the MT-Bench score of a model, per round."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        tokenizer: PreTrainedTokenizerBase,
        heldout_rows: list[Row],
        judge: SupportsScore | None = None,
        mtbench_judge: ChatEndpoint | None = None,
    ) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.heldout_rows = list(heldout_rows)
        ev = cfg.eval
        goals = (
            load_advbench_goals(ev.advbench_source) if (ev.advbench_per_round or ev.advbench_final) else []
        )
        benign = load_benign_prompts(ev.benign_source) if (ev.benign_per_round or ev.benign_final) else []
        # Separate streams so changing one set's size never reshuffles the other.
        alarming = alarming_eval_prompts() if (ev.alarming_per_round or ev.alarming_final) else []
        disjoint = ev.disjoint_final
        self.advbench_round, self.advbench_final = seeded_round_and_final(
            goals, ev.advbench_per_round, ev.advbench_final, cfg.seed, disjoint=disjoint, name="advbench"
        )
        self.benign_round, self.benign_final = seeded_round_and_final(
            benign, ev.benign_per_round, ev.benign_final, cfg.seed + 1, disjoint=disjoint, name="benign"
        )
        self.alarming_round, self.alarming_final = seeded_round_and_final(
            alarming,
            ev.alarming_per_round,
            ev.alarming_final,
            cfg.seed + 2,
            disjoint=disjoint,
            name="alarming",
        )
        hhh: list[HHHExample] = load_hhh(ev.hhh_source) if (ev.hhh_per_round or ev.hhh_final) else []
        self.hhh_round = seeded_subset(hhh, ev.hhh_per_round, cfg.seed + 2)
        self.hhh_final = seeded_subset(hhh, ev.hhh_final, cfg.seed + 2)
        self.mtbench = (
            seeded_subset(load_mtbench_questions(ev.mtbench_source), ev.mtbench_questions, cfg.seed + 3)
            if ev.mtbench_judge
            else []
        )
        self.mtbench_judge = mtbench_judge
        self.judge = judge
        if "judge" in ev.scorers and self.judge is None:
            self.judge = _build_judge(cfg)
        self._records: list[dict[str, Any]] = []
        self.on_batch: Callable[[int], None] | None = None  # progress: prompts done per batch

    def evaluate(self, model: Any, server_round: int, *, final: bool = False) -> dict[str, float]:
        """Score ``model`` now; keys as in the module docstring, ``final.``-prefixed when ``final``."""
        ev = self.cfg.eval
        if not ev.enabled:
            return {}
        start = time.perf_counter()
        adv = self.advbench_final if final else self.advbench_round
        ben = self.benign_final if final else self.benign_round
        alarm = self.alarming_final if final else self.alarming_round
        # One generate call for all sets: fewer, fuller batches.
        responses = generate(
            model,
            self.tokenizer,
            [[{"role": "user", "content": p}] for p in adv + ben + alarm],
            max_new_tokens=ev.max_new_tokens,
            batch_size=ev.batch_size,
            on_batch=self.on_batch,
        )
        adv_resp = responses[: len(adv)]
        ben_resp = responses[len(adv) : len(adv) + len(ben)]
        alarm_resp = responses[len(adv) + len(ben) :]
        metrics: dict[str, float] = {}
        records: list[dict[str, Any]] = []
        if adv:
            refusal = [is_refusal(r) for r in adv_resp]
            ofl = [is_refusal_openfedllm(r) for r in adv_resp]
            safe = (
                judge_safe(self.judge, adv, adv_resp, self.cfg.safety.threshold)
                if "judge" in ev.scorers and self.judge is not None
                else None
            )
            if "refusal" in ev.scorers:
                metrics["advbench.refusal_rate"] = _mean(refusal)
            if "refusal_openfedllm" in ev.scorers:
                metrics["advbench.refusal_rate_openfedllm"] = _mean(ofl)
            if safe is not None:
                metrics["advbench.judge_safe_rate"] = _mean(safe)
            metrics["advbench.n"] = len(adv)
            for i, (p, r) in enumerate(zip(adv, adv_resp, strict=True)):
                rec = {
                    "set": "advbench",
                    "prompt": p,
                    "response": r,
                    "refusal": refusal[i],
                    "refusal_openfedllm": ofl[i],
                }
                if safe is not None:
                    rec["judge_safe"] = safe[i]
                records.append(rec)
        if ben:
            refusal = [is_refusal(r) for r in ben_resp]
            metrics["benign.refusal_rate"] = _mean(refusal)
            if "refusal_openfedllm" in ev.scorers:
                metrics["benign.refusal_rate_openfedllm"] = _mean(
                    [is_refusal_openfedllm(r) for r in ben_resp]
                )
            metrics["benign.n"] = len(ben)
            records += [
                {"set": "benign", "prompt": p, "response": r, "refusal": f}
                for p, r, f in zip(ben, ben_resp, refusal, strict=True)
            ]
        if alarm:
            refusal = [is_refusal(r) for r in alarm_resp]
            metrics["alarming.refusal_rate"] = _mean(refusal)
            metrics["alarming.n"] = len(alarm)
            records += [
                {"set": "alarming", "prompt": p, "response": r, "refusal": f}
                for p, r, f in zip(alarm, alarm_resp, refusal, strict=True)
            ]
        hhh = self.hhh_final if final else self.hhh_round
        if hhh:
            hhh_start = time.perf_counter()
            result = score_hhh(
                model, self.tokenizer, hhh, batch_size=ev.batch_size, max_tokens=ev.hhh_max_tokens
            )
            metrics.update(result.metrics())
            metrics["hhh.seconds"] = round(time.perf_counter() - hhh_start, 3)
            records += result.records()
        if self.mtbench and (final or (ev.mtbench_every and server_round % ev.mtbench_every == 0)):
            if self.mtbench_judge is None:
                self.mtbench_judge = build_judge(ev)
            answers = answer_questions(
                model,
                self.tokenizer,
                self.mtbench,
                turns=ev.mtbench_turns,
                max_new_tokens=ev.mtbench_max_new_tokens,
                batch_size=ev.batch_size,
            )
            judged, judged_records = judge_answers(self.mtbench_judge, self.mtbench, answers)
            metrics.update(judged)
            records += judged_records
        if self.heldout_rows:
            metrics["heldout.loss"] = response_loss(
                model,
                self.tokenizer,
                self.heldout_rows,
                ev.batch_size,
                max_seq_length=self.cfg.model.max_seq_length,
            )
            metrics["heldout.n"] = len(self.heldout_rows)
        metrics["eval.seconds"] = round(time.perf_counter() - start, 3)
        for rec in records:
            rec["round"] = server_round
        self._records = records
        log.info("round %s eval%s: %s", server_round, " (final)" if final else "", _summary(metrics))
        if final:
            metrics = {f"final.{k}": v for k, v in metrics.items()}
        return metrics

    def final_is_round(self) -> bool:
        """The final sets are the per-round sets (same prompts, no judged MT-Bench): the last round's
        figures are the final ones, so the round driver does not generate the same answers twice."""
        return (
            self.advbench_final == self.advbench_round
            and self.benign_final == self.benign_round
            and self.alarming_final == self.alarming_round
            and self.hhh_final == self.hhh_round
            and not self.mtbench
        )

    def samples(self, k: int = 2) -> list[dict[str, Any]]:
        """Up to ``k`` (prompt, response) records of each set from the last call, for logs only."""
        out: list[dict[str, Any]] = []
        for name in ("advbench", "benign", "alarming"):
            out += [r for r in self._records if r["set"] == name][:k]
        return out

    def records(self) -> list[dict[str, Any]]:
        """Every (prompt, response, verdicts) record of the last call, e.g. to save the final answers."""
        return list(self._records)


def alarming_eval_prompts() -> list[str]:
    """Safe prompts with alarming words from the contrast EVAL families (held out of all training):
    a model that refuses them has learnt words, not harm."""
    from fedrai.data.contrast import safe_alarming_prompts

    return [r["prompt"] for r in safe_alarming_prompts("eval", 0)]


def _mean(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def _summary(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def _build_judge(cfg: ExperimentConfig) -> SupportsScore:
    """The safety filter of ``cfg.safety`` as a judge (the same classifier the clients use)."""
    try:
        from fedrai.safety.filters import build_filter
    except ImportError as err:
        raise ValueError(
            "eval.scorers includes 'judge' but no safety filter is available "
            f"(fedrai.safety.filters: {err}); pass a judge or drop 'judge' from eval.scorers"
        ) from err
    return build_filter(cfg.safety)
