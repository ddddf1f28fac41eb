"""Server placement: CAI on the aggregated global model every round, as the paper ran it.

After aggregation the server draws red-team prompts, lets the global model answer them,
critiques and revises those answers, and tunes the global adapter in place on the revisions
(SFT, DPO with the revision preferred over the original, or both) for a fixed number of steps:
the paper's cost-efficient CAI trains 50 iterations a round instead of a full pass.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from fedrai.config import ExperimentConfig
from fedrai.data import Row
from fedrai.data.sources import PROMPT_SUFFIXES, DataError, first_text, read_records
from fedrai.evaluation.scorers import is_refusal
from fedrai.private_files import open_private, private_dir
from fedrai.safety.cai.client import constitution_for
from fedrai.safety.cai.dpo import dpo_pairs, train_dpo
from fedrai.safety.cai.engine import Audit, CAIEngine, Scorer
from fedrai.safety.cai.llm import Critic, GenerateFn, SelfModel, build_critic

POOL_SOURCE = "embedded:redteam-pool"
PROMPT_COLUMNS = (
    "forbidden_prompt",
    "prompt",
    "goal",
    "behavior",
    "Behavior",
    "text",
    "question",
    "instruction",
    "value",
)

# The one data error (fedrai.data.sources); kept under this name for callers of this module.
PromptSourceError = DataError


def load_red_team_prompts(source: str) -> list[str]:
    """Prompts from ``embedded:redteam-pool`` (every offline source but AdvBench, de-duplicated against it:
    :mod:`fedrai.safety.redteam`), ``embedded:strongreject`` / ``embedded:harmbench`` / ``embedded:advbench``, a
    CSV / TXT / JSON / JSONL / parquet / pyrit-YAML file, or a hub dataset id (first non-empty prompt column),
    de-duplicated in order. Read by :mod:`fedrai.data.sources`; a row without a prompt is an error."""
    if source == POOL_SOURCE:
        from fedrai.safety.redteam import load_pool

        return load_pool()[0]
    loaded = read_records(
        source,
        lambda rec: first_text(rec.value, PROMPT_COLUMNS, "prompt text"),
        what="red-team prompts",
        suffixes=PROMPT_SUFFIXES,
        csv_comments=True,
    )
    return list(dict.fromkeys(loaded.items))


class _JsonlAudit:
    """Fallback audit (one JSONL file) for when fedrai.safety.audit is not available."""

    def __init__(self, directory: Path) -> None:
        private_dir(directory)
        self.path = directory / "cai-audit.jsonl"

    def write(self, record: dict[str, Any]) -> None:
        with open_private(self.path, "a") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _audit_log(directory: Path) -> Audit:
    try:
        from fedrai.safety.audit import AuditLog
    except ImportError:
        return _JsonlAudit(directory)
    return AuditLog(directory)


class ServerCAI:
    """Built once per run; :meth:`run_round` critiques, revises and tunes the global adapter."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        tokenizer: Any,
        safety_filter: Scorer | None,
        audit_dir: Path,
        *,
        critic: Critic | None = None,
        generate_fn: GenerateFn | None = None,
        train_fn: Callable[..., Any] | None = None,
        audit: Audit | None = None,
    ) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.safety_filter = safety_filter
        self.constitution = constitution_for(cfg)
        self.prompts = load_red_team_prompts(cfg.cai.server_prompts_source)
        self.audit = audit if audit is not None else _audit_log(Path(audit_dir))
        self._generate = generate_fn
        self._train = train_fn
        # A `local` or `http` critic is independent of the global model: build it once.
        self._critic = critic
        if self._critic is None and cfg.cai.llm != "self":
            self._critic = build_critic(cfg, generate_fn=generate_fn)
        self.points: list[tuple[int, dict[str, Any]]] = []  # adapters part-way along the round's SFT
        self.benign: list[Row] = []
        if cfg.cai.server_benign_source and cfg.cai.server_benign_per_round > 0:
            from fedrai.data.client_data import server_benign_rows

            self.benign = server_benign_rows(cfg, cfg.cai.server_benign_source)
        self.contrast: list[Row] = []
        if cfg.cai.server_contrast_per_round > 0:
            from fedrai.data.client_data import contrast_train_rows

            self.contrast = contrast_train_rows(cfg.seed)

    def draw(self, server_round: int) -> list[str]:
        """The round's prompts: seeded by (seed, round), so reruns and strategies see the same ones."""
        k = min(self.cfg.cai.server_prompts_per_round, len(self.prompts))
        return random.Random(self.cfg.seed * 1_000_003 + server_round).sample(self.prompts, k)

    def draw_benign(self, server_round: int) -> list[Row]:
        """The round's benign anchor rows, then its contrast rows (each seeded by seed and round)."""
        k = min(self.cfg.cai.server_benign_per_round, len(self.benign))
        rng = random.Random(f"{self.cfg.seed}:{server_round}:benign")
        rows = [dict(r) for r in rng.sample(self.benign, k)]
        k = min(self.cfg.cai.server_contrast_per_round, len(self.contrast))
        rng = random.Random(f"{self.cfg.seed}:{server_round}:contrast")
        return rows + [dict(r) for r in rng.sample(self.contrast, k)]  # type: ignore[misc]

    def benign_pairs(self, rows: list[Row]) -> list[dict[str, Any]]:
        """Benign prompt: its reference answer preferred over a refusal (teaches when not to refuse)."""
        pairs = []
        for row in rows:
            prompt = str(row["messages"][-1]["content"])
            pairs.append(
                {
                    "prompt": [dict(m) for m in row["messages"]],
                    "chosen": [{"role": "assistant", "content": row["response"]}],
                    "rejected": [{"role": "assistant", "content": self.constitution.refusal_text(prompt)}],
                }
            )
        return pairs

    def take_points(self) -> list[tuple[int, dict[str, Any]]]:
        """The adapters kept part-way along the last round's SFT step, as (steps, adapter state), the
        latest first (the order the gate judges them in); handed over once."""
        points, self.points = sorted(self.points, key=lambda p: -p[0]), []
        return points

    def _keep_point(self, model: Any, keep_at: set[int], steps: int) -> None:
        if steps in keep_at:
            from fedrai.model import get_adapter_state

            self.points.append((steps, get_adapter_state(model)))

    def run_round(self, model: Any, server_round: int, *, keep_at: Sequence[int] = ()) -> dict[str, float]:
        """Critique/revise the global model's answers to red-team prompts, then tune it in place.

        ``keep_at``: SFT step counts after which the adapter is copied (the gate may keep a point part-way
        along the step); :meth:`take_points` hands the copies over."""
        cai = self.cfg.cai
        self.points = []
        started = time.perf_counter()
        prompts = self.draw(server_round)
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        actor = SelfModel(
            model,
            self.tokenizer,
            max_new_tokens=cai.max_new_tokens,
            batch_size=self.cfg.eval.batch_size,
            generate_fn=self._generate,
        )
        # With no revision to try, prompts harmful by construction and SFT only, the model's own answers
        # change nothing: every prompt gets the constitution's harm-naming refusal. Skip generating them.
        answer = cai.max_tries > 0 or not cai.server_assume_harmful or cai.objective != "sft"
        originals = actor.complete(conversations) if answer else [""] * len(conversations)
        critic: Critic = self._critic if self._critic is not None else actor
        actor_tokens = actor.generated_tokens
        engine = CAIEngine(
            self.constitution,
            critic,
            cai,
            safety_filter=self.safety_filter,
            threshold=self.cfg.safety.threshold,
            audit=self.audit,
            audit_context={"placement": "server", "round": server_round},
        )
        seed = self.cfg.seed * 1_000_003 + server_round
        # Red-team prompts are harmful by construction: with server_assume_harmful a compliant answer is
        # never kept because a filter missed it (a kept compliance would be trained on as a target).
        unsafe = [not is_refusal(o) for o in originals] if cai.server_assume_harmful else None
        result = engine.run(
            conversations,
            list(originals),
            seed=seed,
            ids=[f"server:{server_round}:{i}" for i in range(len(prompts))],
            original_unsafe=unsafe,
        )
        counts = result.counts
        counts.generated_responses += len(prompts) if answer else 0
        counts.generated_tokens += actor_tokens
        counts.seconds = time.perf_counter() - started

        metrics = counts.to_metrics()
        rows: list[Row] = [
            {
                "id": o.row_id,
                "messages": [{"role": "user", "content": str(o.conversation[-1]["content"])}],
                "response": o.final,
                "origin": "cai",
                "group": "server-cai",
            }
            for o in result.outcomes
            if o.final is not None
        ]
        benign = self.draw_benign(server_round)
        rows += benign
        train_started = time.perf_counter()
        sft_steps = dpo_steps = 0
        if cai.server_steps > 0 and rows and cai.objective in ("sft", "sft+dpo"):
            train = self._train
            if train is None:
                from fedrai.training import train_lora as train
            res = train(
                model,
                self.tokenizer,
                rows,
                steps=cai.server_steps,
                batch_size=self.cfg.train.batch_size,
                grad_accum=1,
                learning_rate=cai.server_learning_rate,
                max_seq_length=self.cfg.model.max_seq_length,
                seed=seed,
                max_grad_norm=self.cfg.train.max_grad_norm,
                on_step=partial(self._keep_point, model, set(keep_at) - {cai.server_steps}),
            )
            sft_steps = cai.server_steps
            metrics["cai.sft_loss_first"] = float(res.loss_first)
            metrics["cai.sft_loss_last"] = float(res.loss_last)
        pairs = dpo_pairs(result.outcomes)
        if self.cfg.cai.server_benign_dpo:
            pairs += self.benign_pairs(benign)
        if cai.server_steps > 0 and pairs and cai.objective in ("dpo", "sft+dpo"):
            dpo = train_dpo(
                model,
                self.tokenizer,
                pairs,
                steps=cai.server_steps,
                lr=cai.server_learning_rate,
                beta=cai.dpo_beta,
                seed=seed,
                batch_size=self.cfg.train.batch_size,
                max_length=self.cfg.model.max_seq_length,
            )
            dpo_steps = cai.server_steps
            metrics.update({f"cai.{k}": v for k, v in dpo.items() if k != "dpo.seconds"})
        model.eval()
        metrics["cai.train_rows"] = float(len(rows))
        metrics["cai.benign_rows"] = float(len(benign))
        metrics["cai.dpo_pairs"] = float(len(pairs))
        metrics["cai.sft_steps"] = float(sft_steps)
        metrics["cai.dpo_steps"] = float(dpo_steps)
        metrics["cai.train_seconds"] = time.perf_counter() - train_started
        metrics["cai.total_seconds"] = time.perf_counter() - started
        return metrics
