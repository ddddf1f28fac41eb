"""Evaluation of the global model: AdvBench and benign prompt sets, batched generation, scorers.

Light imports only here (no torch); ``ServerEvaluator`` lives in ``fedrai.evaluation.server_eval``
and ``generate`` / ``response_loss`` in ``fedrai.evaluation.generation``.
"""

from fedrai.evaluation.advbench import (
    Behavior,
    EvalDataError,
    load_advbench,
    load_advbench_goals,
    load_benign_prompts,
)
from fedrai.evaluation.scorers import (
    LLM_ATTACKS_TEST_PREFIXES,
    OPENFEDLLM_REFUSAL_KEYWORDS,
    is_refusal,
    is_refusal_openfedllm,
    judge_safe,
    judge_safe_rate,
    refusal_rate,
    refusal_rate_openfedllm,
)

__all__ = [
    "LLM_ATTACKS_TEST_PREFIXES",
    "OPENFEDLLM_REFUSAL_KEYWORDS",
    "Behavior",
    "EvalDataError",
    "is_refusal",
    "is_refusal_openfedllm",
    "judge_safe",
    "judge_safe_rate",
    "load_advbench",
    "load_advbench_goals",
    "load_benign_prompts",
    "refusal_rate",
    "refusal_rate_openfedllm",
]
