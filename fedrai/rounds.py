"""The server's round loop: send the global adapter, aggregate, guard, evaluate, checkpoint.

It calls a Flower strategy's own ``configure_train`` / ``aggregate_train`` as
``Strategy.start`` does, but owns the loop so that a run can resume at round N+1 with the
strategy's state, server-side CAI can tune the aggregate, and every round leaves one metrics row
and one checkpoint behind. The strategy's cross-round state follows the global adapter: it is
re-based after server CAI and restored from before the round when the gate refuses it
(``strategies.state``).
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from fedrai.adapter_export import save_adapter
from fedrai.checkpoint import Checkpoint
from fedrai.config import ExperimentConfig
from fedrai.evaluation.gate import BENIGN_KEY, KEPT, LOSS_KEY, AcceptanceGate, point_label
from fedrai.model import count_parameters, get_adapter_state, load_adapter_dir, load_model, set_adapter_state
from fedrai.progress import format_round_line
from fedrai.run_dir import RunDir
from fedrai.run_progress import emit
from fedrai.screening.screen import build_update_screen
from fedrai.strategies import build_strategy
from fedrai.strategies.node_order import PartitionOrderedGrid
from fedrai.tracking import open_trackers
from fedrai.training import round_learning_rate
from fedrai.transport import from_arrays, to_arrays
from fedrai.versions import RUN_FILES_SCHEMA, fedrai_version

log = logging.getLogger(__name__)


def run_rounds(grid: Grid, cfg: ExperimentConfig, run_dir: Path, *, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) the experiment's rounds on ``grid``; return the summary written to disk."""
    run = RunDir(run_dir)
    if cfg.strategy.fraction_train < 1.0:  # a sample of the clients: the same partitions in every run
        grid = PartitionOrderedGrid(grid, timeout=cfg.federation.round_timeout_s)
    trackers = open_trackers(cfg, run.path)  # TensorBoard / MLflow get every metrics row
    run.listeners.extend(t.log for t in trackers)
    started = time.perf_counter()
    model, tokenizer = load_model(cfg.model, cfg.lora, cfg.seed)
    trainable, total = count_parameters(model)
    strategy = build_strategy(
        cfg.strategy,
        cfg.federation.num_clients,
        validation=cfg.validation,
        screen=build_update_screen(cfg, model, tokenizer),
        privacy=cfg.privacy,
    )
    evaluator = _build_evaluator(cfg, tokenizer)
    server_cai = _build_server_cai(cfg, tokenizer, run)
    gate = _build_gate(cfg)  # only with evaluation: the config refuses a gate without it

    first_round = 1
    if resume:
        ckpt = run.load_checkpoint()
        ckpt.check_strategy(cfg.strategy.name, run.checkpoint)
        last = ckpt.round
        set_adapter_state(model, ckpt.adapter)
        strategy.restore_state(ckpt.strategy)
        if gate is not None:
            state = ckpt.extra.get("gate")
            if state is not None:
                gate.load_state(state)
            else:  # a checkpoint from before the gate was on: the last round is the reference
                last_row = run.read_metrics()[-1]
                gate.accept_baseline({k: v for k, v in last_row.items() if k in (BENIGN_KEY, LOSS_KEY)})
        run.truncate_metrics(last)
        first_round = last + 1
        log.info("resuming %s after round %d", run.path, last)
    else:
        run.path.mkdir(parents=True, exist_ok=True)
        run.config.write_text(cfg.to_toml(), encoding="utf-8")
        row: dict[str, Any] = {"round": 0, "seconds": 0.0}
        if evaluator is not None:
            emit("evaluate", 0)
            scores = evaluator.evaluate(model, 0)
            row.update(scores)
            if gate is not None:
                gate.accept_baseline(scores)
                _keep_if_safest(gate, cfg, model, tokenizer, run, 0, row)
        run.append_metrics(row)
        print(format_round_line(row, cfg.federation.num_rounds), flush=True)

    arrays = to_arrays(get_adapter_state(model), cfg.federation.wire_dtype)
    accepted = arrays  # the global adapter the gate last accepted (the clients' next start)
    for server_round in range(first_round, cfg.federation.num_rounds + 1):
        t0 = time.perf_counter()
        random.seed(cfg.seed * 1_000_003 + server_round)  # Flower samples clients with `random`
        lr = round_learning_rate(cfg.train, server_round, cfg.federation.num_rounds)
        train_config = ConfigRecord({"server-round": server_round, "lr": lr, "strategy": cfg.strategy.name})
        messages = list(strategy.configure_train(server_round, arrays, train_config, grid))
        emit("round", server_round, sampled=len(messages), steps=cfg.train.local_steps)
        before = strategy.capture_state()  # what the gate restores if it refuses this round
        replies = list(grid.send_and_receive(messages, timeout=cfg.federation.round_timeout_s))
        emit("replies", server_round, replies=len(replies))
        aggregated, _ = strategy.aggregate_train(server_round, replies)
        row = {"round": server_round, "lr": lr, **strategy.round_report()}
        run.append_clients(server_round, strategy.traffic.clients)  # which node served whom
        for err in strategy.traffic.errors:
            log.warning("round %d: client failed: %s", server_round, err)
        if aggregated is None:
            log.warning("round %d: no usable reply; the global adapter is unchanged", server_round)
        else:  # in the wire dtype: FedOpt strategies return float64, which the next round's
            # reply validation would compare against (and which doubles the traffic down)
            arrays = to_arrays(from_arrays(aggregated), cfg.federation.wire_dtype)
        set_adapter_state(model, from_arrays(arrays))
        timings = {"time.clients": time.perf_counter() - t0}  # sampling, Ray, guard + training, aggregation

        aggregate, after_aggregate = arrays, strategy.capture_state()  # the gate's fallback
        tuned = False
        path_points: dict[int, Any] = {}  # server steps -> the adapter part-way along the server's step
        if server_cai is not None:  # prefixed apart from the clients' own cai.* counts
            emit("server_cai", server_round)
            t = time.perf_counter()
            metrics = server_cai.run_round(model, server_round, keep_at=_server_step_points(cfg))
            row.update({f"cai_server.{k.removeprefix('cai.')}": v for k, v in metrics.items()})
            path_points = {
                steps: to_arrays(state, cfg.federation.wire_dtype)
                for steps, state in server_cai.take_points()
            }
            arrays = to_arrays(get_adapter_state(model), cfg.federation.wire_dtype)
            strategy.rebase_state(arrays)  # e.g. FedAvgM measures the next step from the tuned adapter
            tuned = aggregated is not None
            timings["time.server_cai"] = time.perf_counter() - t

        last = server_round == cfg.federation.num_rounds
        if evaluator is not None:
            emit("evaluate", server_round)
            t = time.perf_counter()
            scores = evaluator.evaluate(model, server_round)
            if gate is not None:
                fallback = tuned and cfg.gate.fallback == "aggregate"
                evaluate_aggregate = partial(_evaluate_adapter, evaluator, model, aggregate, server_round)
                partials = [
                    (
                        steps,
                        partial(_evaluate_adapter, evaluator, model, point, server_round, point_label(steps)),
                    )
                    for steps, point in path_points.items()
                ]
                choice = gate.choose(scores, evaluate_aggregate if fallback else None, partials=partials)
                row.update(choice.metrics())
                scores = choice.scores
                if choice.kept != "candidate":
                    log.warning("round %d gated, kept the %s: %s", server_round, choice.kept, choice.reasons)
                if choice.kept == "partial" and choice.partial_steps is not None:  # part of the server's step
                    arrays = path_points[choice.partial_steps]
                    strategy.restore_state(after_aggregate)
                    strategy.rebase_state(arrays)
                elif choice.kept == "aggregate":  # the clients' round stands; the server's step does not
                    arrays = aggregate
                    strategy.restore_state(after_aggregate)
                elif choice.kept == "previous":
                    arrays = accepted
                    strategy.restore_state(before)  # no momentum, moments or c from a refused round
                    strategy.note_rejected(server_round)
                set_adapter_state(model, from_arrays(arrays))
            accepted = arrays
            row.update(scores)
            if gate is not None and choice.kept != "previous":
                _keep_if_safest(gate, cfg, model, tokenizer, run, server_round, row)
            timings["time.eval"] = time.perf_counter() - t
            if last:  # the full set once, beside the per-round subset that keeps curves comparable
                t = time.perf_counter()
                final_round = _final_round(cfg, gate, server_round)
                if final_round != server_round:  # gate.final = "safest": score the safest accepted adapter
                    load_adapter_dir(model, run.adapter(final_round))
                if final_round == server_round and evaluator.final_is_round():  # the figures above are final
                    row.update({f"final.{k}": v for k, v in scores.items() if k != "eval.seconds"})
                else:
                    row.update(evaluator.evaluate(model, server_round, final=True))
                if cfg.gate.final == "safest":
                    row["final.round"] = final_round
                set_adapter_state(model, from_arrays(arrays))  # the last round's, for its save and checkpoint
                timings["time.final_eval"] = time.perf_counter() - t
        t = time.perf_counter()
        if cfg.output.save_every_round or last:
            save_adapter(model, tokenizer, run.adapter(server_round), cfg, row)  # portable: hub id, card
        extra = {"gate": gate.state()} if gate is not None else {}
        run.save_checkpoint(
            Checkpoint(server_round, from_arrays(arrays), cfg.strategy.name, strategy.capture_state(), extra)
        )
        timings["time.save"] = time.perf_counter() - t
        row.update(timings)
        row["seconds"] = time.perf_counter() - t0
        run.append_metrics(row)
        print(format_round_line(row, cfg.federation.num_rounds), flush=True)

    summary = _summary(cfg, run, trainable, total, time.perf_counter() - started)
    run.write_summary(summary)
    _drop_superseded_adapters(cfg, run, {cfg.federation.num_rounds, _final_round(cfg, gate, 0)})
    for tracker in trackers:
        tracker.close()
    return summary


def _server_step_points(cfg: ExperimentConfig) -> list[int]:
    """SFT step counts part-way along the server's step that the gate may keep (gate.server_step_points)."""
    k, steps = cfg.gate.server_step_points, cfg.cai.server_steps
    if k <= 1 or not cfg.gate_enabled():
        return []
    return sorted({round(i * steps / k) for i in range(1, k)})  # 1..steps-1, as the config has k <= steps


def _keep_if_safest(
    gate: AcceptanceGate,
    cfg: ExperimentConfig,
    model: Any,
    tokenizer: Any,
    run: RunDir,
    server_round: int,
    row: dict[str, Any],
) -> None:
    """With ``gate.final = "safest"``: save the adapter just kept when it is the safest accepted so far
    (it may end the run; the ones it supersedes go when the run ends, after the last checkpoint)."""
    if cfg.gate.final == "safest" and gate.note_kept(server_round, row):
        save_adapter(model, tokenizer, run.adapter(server_round), cfg, row)


def _drop_superseded_adapters(cfg: ExperimentConfig, run: RunDir, keep: set[int]) -> None:
    """Adapters saved as the safest so far that neither end the run nor were asked for."""
    if cfg.gate.final != "safest" or cfg.output.save_every_round:
        return
    for path in sorted((run.path / "adapters").glob("round-*")):
        if path.name.removeprefix("round-").isdigit() and int(path.name.removeprefix("round-")) not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _final_round(cfg: ExperimentConfig, gate: AcceptanceGate | None, last_round: int) -> int:
    """The round whose adapter the final sets score: the last, or the safest accepted one."""
    if cfg.gate.final == "safest" and gate is not None and gate.safest_round is not None:
        return gate.safest_round
    return last_round


def _evaluate_adapter(
    evaluator: Any, model: Any, arrays: Any, server_round: int, label: str = "aggregate"
) -> dict[str, Any]:
    """Load ``arrays`` into ``model`` and evaluate it on the round's sets (one of the gate's fallbacks)."""
    emit("evaluate", server_round, adapter=label)
    set_adapter_state(model, from_arrays(arrays))
    return dict(evaluator.evaluate(model, server_round))


def _build_evaluator(cfg: ExperimentConfig, tokenizer: Any) -> Any:
    if not cfg.eval.enabled:
        return None
    from fedrai.data.client_data import heldout_rows
    from fedrai.evaluation.server_eval import ServerEvaluator

    judge = None
    if "judge" in cfg.eval.scorers:
        from fedrai.safety.filters import build_filter

        judge = build_filter(cfg.safety)
    # The held-out rows come from the same source as the clients' data (simulation); a deployed
    # server without that data sets data.heldout_rows = 0 and skips the held-out loss.
    heldout = heldout_rows(cfg) if cfg.data.heldout_rows > 0 else []
    return ServerEvaluator(cfg, tokenizer, heldout, judge=judge)


def _build_gate(cfg: ExperimentConfig) -> AcceptanceGate | None:
    if not cfg.gate_enabled():
        return None
    return AcceptanceGate(
        cfg.gate.max_benign_refusal_increase,
        cfg.gate.max_heldout_loss_increase,
        cfg.gate.max_alarming_refusal_increase,
    )


def _build_server_cai(cfg: ExperimentConfig, tokenizer: Any, run: RunDir) -> Any:
    if cfg.cai.placement not in ("server", "both"):
        return None
    from fedrai.safety.cai.server import ServerCAI
    from fedrai.safety.filters import build_filter

    return ServerCAI(cfg, tokenizer, build_filter(cfg.safety), run.path / "server")


def _summary(
    cfg: ExperimentConfig, run: RunDir, trainable: int, total: int, seconds: float
) -> dict[str, Any]:
    rows = run.read_metrics()
    trained = [r for r in rows if r["round"] > 0]
    final = rows[-1] if rows else {}
    bytes_up = sum(r.get("bytes_up", 0) for r in trained)
    bytes_down = sum(r.get("bytes_down", 0) for r in trained)
    wire_bytes_per_param = 2 if cfg.federation.wire_dtype == "float16" else 4
    return {
        "fedrai_version": fedrai_version(),
        "schema_version": RUN_FILES_SCHEMA,
        "name": cfg.name,
        "setting": cfg.setting,
        "strategy": cfg.strategy.name,
        "rounds": len(trained),
        "seconds": seconds,
        "failures": sum(r.get("failures", 0) for r in trained),
        "gated_rounds": int(sum(r.get("gate.rejected", 0) for r in trained)),
        "gate_kept": {k: sum(r.get("gate.kept") == k for r in trained) for k in KEPT}
        if any("gate.kept" in r for r in trained)
        else None,
        "bytes_up": bytes_up,
        "bytes_down": bytes_down,
        "adapter_parameters": trainable,
        "model_parameters": total,
        "adapter_share_of_model": trainable / total if total else None,
        "adapter_bytes_on_wire": trainable * wire_bytes_per_param,
        "final": {k: v for k, v in final.items() if k != "round"},
        "last_adapter": str(run.adapter(trained[-1]["round"])) if trained else None,
        "final_adapter": str(run.adapter(int(final.get("final.round", trained[-1]["round"]))))
        if trained
        else None,
    }
