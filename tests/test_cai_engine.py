"""The critique -> revise -> re-check loop, its fallbacks and counts, and the client placement."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedrai.config import CAIConfig, ExperimentConfig, SafetyConfig
from fedrai.safety.cai import (
    CAIEngine,
    SelfModel,
    check_revision,
    load_constitution,
    measure_scope_cost,
    revise_on_client,
)
from tests.cai_fakes import KeywordFilter, ListAudit, ScriptedCritic

CONST = load_constitution(None)
HARMFUL = "Mix these chemicals to make a bomb."


def _convs(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"How do I make a weapon {i}?"}] for i in range(n)]


def _engine(critic, filt=None, audit=None, **cai) -> CAIEngine:
    return CAIEngine(CONST, critic, CAIConfig(**cai), safety_filter=filt, threshold=0.5, audit=audit)


def _assert_text_free(metrics: dict) -> None:
    assert all(isinstance(k, str) and k.startswith("cai.") for k in metrics)
    assert all(isinstance(v, float) for v in metrics.values())


def test_good_revision_is_accepted_and_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools
    import types

    import fedrai.safety.cai.engine as engine_module

    ticks = itertools.chain([50.0], itertools.repeat(52.25))  # the run starts at 50 s, ends at 52.25 s
    monkeypatch.setattr(engine_module, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    audit = ListAudit()
    filt = KeywordFilter()
    critic = ScriptedCritic(lambda text: "I can't help with weapons, but here is how to stay safe.")
    res = _engine(critic, filt, audit).run(_convs(3), [HARMFUL] * 3, seed=0, ids=["a", "b", "c"])
    c = res.counts
    assert (c.rows, c.revised_by_model, c.fallback_refusals, c.dropped, c.tries) == (3, 3, 0, 0, 3)
    assert c.generated_tokens > 0 and c.seconds == 2.25
    assert [o.status for o in res.outcomes] == ["revised"] * 3
    assert res.outcomes[0].final.startswith("I can't help")
    tries = [r for r in audit.records if r["event"] == "cai.try"]
    outs = [r for r in audit.records if r["event"] == "cai.outcome"]
    assert len(tries) == 3 and len(outs) == 3
    t = tries[0]
    assert t["response"] == HARMFUL and t["critique"] and t["revision"] and t["accepted"] is True
    assert t["unsafe_prob"] == 0.0 and t["principle"] in {p.name for p in CONST.principles}
    assert outs[0]["original"] == HARMFUL and outs[0]["fallback"] is False
    _assert_text_free(c.to_metrics())


@pytest.mark.parametrize("fallback", ["refuse", "drop"])
def test_filter_rejected_revisions_fall_back_after_max_tries(fallback: str) -> None:
    audit = ListAudit()
    critic = ScriptedCritic(lambda text: "Sure, the bomb needs more poison.")
    res = _engine(critic, KeywordFilter(), audit, max_tries=3, fallback=fallback).run(
        _convs(2), [HARMFUL] * 2, seed=1
    )
    c = res.counts
    assert c.tries == 6 and c.rejected_by_filter == 6 and c.revised_by_model == 0
    if fallback == "refuse":
        assert c.fallback_refusals == 2 and c.dropped == 0
        refusals = {r.text for r in CONST.refusals}
        assert all(o.status == "refusal" and o.final in refusals for o in res.outcomes)
    else:
        assert c.dropped == 2 and c.fallback_refusals == 0
        assert all(o.status == "dropped" and o.final is None for o in res.outcomes)
    assert sum(r["event"] == "cai.try" for r in audit.records) == 6
    assert all(r["fallback"] for r in audit.records if r["event"] == "cai.outcome")


@pytest.mark.parametrize(
    "bad",
    [
        lambda text: "",
        lambda text: text,  # identical to the original
        lambda text: "Revision: " + CONST.principles[0].revision,  # parrots the request
    ],
)
def test_invalid_revisions_are_not_accepted(bad) -> None:
    res = _engine(ScriptedCritic(bad), None, max_tries=2).run(_convs(2), [HARMFUL] * 2, seed=0)
    assert res.counts.invalid_revisions == 4 and res.counts.fallback_refusals == 2


def test_retry_succeeds_and_safe_original_is_kept() -> None:
    state = {"n": 0}

    def flaky(text: str) -> str:
        state["n"] += 1
        return "" if state["n"] == 1 else "A safe, helpful answer without harm."

    convs = _convs(2)
    res = _engine(ScriptedCritic(flaky), KeywordFilter(), max_tries=2).run(
        convs, [HARMFUL, "Bread needs flour."], seed=0, original_unsafe=[True, False]
    )
    assert res.counts.tries == 3  # row 0 failed once (empty), then both passed
    assert res.counts.revised_by_model == 2


def test_safe_original_with_failed_revisions_is_kept_not_refused() -> None:
    res = _engine(ScriptedCritic(lambda t: ""), KeywordFilter()).run(
        _convs(1), ["Bread needs flour."], seed=0
    )
    assert res.counts.kept_original == 1 and res.counts.fallback_refusals == 0
    assert res.outcomes[0].final == "Bread needs flour."


def test_missing_response_is_generated_and_sequence_rounds() -> None:
    critic = ScriptedCritic(lambda text: text.replace("bomb", "cake") + " (revised)")
    res = _engine(critic, KeywordFilter(), principle_order="sequence", revision_rounds=2).run(
        _convs(2), [None, HARMFUL], seed=0
    )
    assert res.counts.generated_responses == 1
    assert res.counts.revised_by_model == 2 and res.counts.tries == 4
    assert res.outcomes[0].original == critic.answer
    assert res.outcomes[0].principles == [CONST.principles[0].name, CONST.principles[1].name]
    assert res.outcomes[1].final.endswith("(revised) (revised)")


def test_check_revision_reasons() -> None:
    p = ["Point out every part that is harmful in your answer.", "Rewrite your answer without harm."]
    assert check_revision("  ", "orig", p, "crit") == "empty"
    assert check_revision("Orig text!", "orig text", p, "crit") == "identical"
    assert check_revision("Rewrite your answer without harm.", "orig", p, "crit") == "echo"
    assert check_revision("The answer is harmful.", "orig", p, "The answer is harmful.") == "echo"
    assert check_revision("I can't help with that.", "Here is how.", p, "It is harmful.") is None


def test_loop_with_tiny_model(tiny_model_dir: Path) -> None:
    """Real batched generation with the tiny random model; a filter that rejects everything."""
    from fedrai.config import ModelConfig
    from fedrai.model import load_base_model

    model, tok = load_base_model(ModelConfig(name_or_path=str(tiny_model_dir), device="cpu"))
    critic = SelfModel(model, tok, max_new_tokens=8, batch_size=4)
    audit = ListAudit()
    filt = KeywordFilter(words=("",))  # every response is unsafe: the fallback must be visible
    res = _engine(critic, filt, audit, max_tries=2, max_new_tokens=8).run(_convs(3), [HARMFUL] * 3, seed=0)
    c = res.counts
    assert c.rows == 3 and c.tries == 6 and c.fallback_refusals == 3 and c.revised_by_model == 0
    assert c.invalid_revisions + c.rejected_by_filter == 6
    assert 0 < c.generated_tokens <= 2 * 6 * 8
    # Rerun with an accepting filter: counts still add up, whatever the random model writes.
    res2 = _engine(critic, KeywordFilter(words=("\x00",)), None, max_tries=2, max_new_tokens=8).run(
        _convs(3), [HARMFUL] * 3, seed=0
    )
    c2 = res2.counts
    assert c2.revised_by_model + c2.fallback_refusals + c2.dropped + c2.kept_original == 3
    assert c2.revised_by_model + c2.invalid_revisions == c2.tries


def _rows(n: int, harmful: set[int]) -> list[dict]:
    return [
        {
            "id": f"r{i}",
            "messages": [{"role": "user", "content": f"Question {i}"}],
            "response": HARMFUL if i in harmful else f"A kind answer {i}.",
            "origin": "harmful" if i in harmful else "benign",
            "group": "g",
        }
        for i in range(n)
    ]


def _cfg(**cai) -> ExperimentConfig:
    safety = SafetyConfig(enabled=True, action="revise")
    return ExperimentConfig(cai=CAIConfig(placement="client", **cai), safety=safety)


def test_revise_on_client_scopes_and_pairs() -> None:
    rows = _rows(6, {1, 4})
    flagged = [r for r in rows if r["origin"] == "harmful"]
    critic = ScriptedCritic(lambda text: "I won't explain that; please stay safe.")
    audit = ListAudit()
    out, counts, pairs = revise_on_client(rows, flagged, _cfg(), critic, KeywordFilter(), audit, seed=0)
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert out[1]["response"].startswith("I won't") and out[0] == rows[0]
    assert counts.rows == 2 and counts.revised_by_model == 2
    assert len(pairs) == 2 and pairs[0]["rejected"][0]["content"] == HARMFUL
    assert {r["placement"] for r in audit.records} == {"client"}

    out_all, counts_all, _ = revise_on_client(
        rows, flagged, _cfg(client_scope="all"), critic, KeywordFilter(), None, 0
    )
    assert counts_all.rows == 6 and counts_all.tries == 6

    dropper = ScriptedCritic(lambda text: "")
    out_drop, c_drop, pairs_drop = revise_on_client(
        rows, flagged, _cfg(fallback="drop"), dropper, None, None, 0
    )
    assert [r["id"] for r in out_drop] == ["r0", "r2", "r3", "r5"] and c_drop.dropped == 2 and not pairs_drop


def test_measure_scope_cost_flagged_is_cheaper() -> None:
    rows = _rows(10, {2, 7})
    flagged = [r for r in rows if r["origin"] == "harmful"]
    critic = ScriptedCritic(lambda text: "I can't help with that, sorry.")
    cost = measure_scope_cost(rows, flagged, _cfg(), critic, KeywordFilter(), seed=0)
    assert cost["cai.cost_share_rows"] == pytest.approx(0.2)
    assert 0 < cost["cai.cost_share_generated_tokens"] < 0.5
