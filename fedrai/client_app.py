"""The Flower ClientApp: receive the global adapter, guard local data, train, send the adapter back.

Only adapter tensors and counts leave the client; texts, scores and the audit stay in its state dir.
"""

from __future__ import annotations

import time
import zlib

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedrai.clients.attack import harmful_training_rows, is_malicious, poison_update
from fedrai.clients.pipeline import cached_guard, guard_rows, load_client_rows, release_memory
from fedrai.clients.placement import (
    CLIENT_GUARD_SECONDS,
    CLIENT_TRAIN_SECONDS,
    PEAK_GPU_KEY,
    PEAK_RSS_KEY,
    PLACEMENT_RECORD,
    peak_gpu_mb,
    peak_rss_mb,
    placement,
)
from fedrai.clients.privacy_mod import privacy_mod
from fedrai.clients.worker import client_state_dir, config_from_run_config, get_worker
from fedrai.data import Row
from fedrai.model import get_adapter_state, set_adapter_state
from fedrai.run_progress import emit
from fedrai.strategies.node_order import SITE_ACTION
from fedrai.strategies.scaffold import CONTROL_DELTA_KEY, ScaffoldClient
from fedrai.strategies.validation import PARTITION_METRIC
from fedrai.training import train_lora
from fedrai.transport import from_arrays, to_arrays

app = ClientApp(mods=[privacy_mod])  # the mod clips only under client-side DP


def client_seed(seed: int, server_round: int, partition_id: int) -> int:
    """A seed per (experiment, round, client): reruns and resumed runs see the same batches."""
    return zlib.crc32(f"{seed}/{server_round}/{partition_id}".encode())


@app.query(SITE_ACTION)
def site(msg: Message, context: Context) -> Message:
    """A simulated client's partition id (a number, no data): the server lists nodes in partition
    order so that a seeded sample picks the same clients in every run (``strategies.node_order``)."""
    metrics = MetricRecord()
    if "partition-id" in context.node_config:
        metrics[PARTITION_METRIC] = int(context.node_config["partition-id"])
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg = config_from_run_config(context.run_config)
    partition_id = int(context.node_config.get("partition-id", 0))
    config = msg.content.config_records["config"]
    server_round = int(config["server-round"])
    # Simulated clients differ by partition; deployed sites without one by their node id.
    site_key = partition_id if "partition-id" in context.node_config else context.node_id
    seed = client_seed(cfg.seed, server_round, site_key)

    worker = get_worker(cfg)
    global_state = from_arrays(msg.content.array_records["arrays"])
    set_adapter_state(worker.model, global_state)
    malicious = is_malicious(cfg, context.node_config, partition_id)  # simulation only, [attack]

    # Guard once per client and run: the model is shared across runs in one process, the data not.
    # In memory for a Ray actor that serves many rounds; on disk for a deployed site, whose
    # SuperNode starts a fresh process per message.
    data_path = str(context.node_config.get("data-path", ""))
    guard_key = (context.run_id, str(context.run_config.get("config-toml", "")), partition_id, data_path)
    guard_started = time.perf_counter()
    if guard_key not in worker.guarded:
        state_dir = client_state_dir(context.run_config, context.node_config, partition_id)

        def guard() -> tuple[list[Row], dict[str, float]]:
            rows = load_client_rows(cfg, partition_id, context.node_config)
            return guard_rows(cfg, rows, state_dir, worker.model, worker.tokenizer, seed)

        worker.guarded[guard_key] = cached_guard(state_dir, guard_key, guard)
    rows, counts = worker.guarded[guard_key]
    guard_seconds = time.perf_counter() - guard_started  # ~0 once guarded: the pass runs once a run
    emit("guard", server_round, client=site_key, rows=len(rows))  # progress for `fedrai run`
    if malicious and cfg.attack.kind == "harmful_finetune":
        # Skips its filter's verdicts and trains on harmful pairs only; it reports the counts an
        # honest run would (same metric keys), as an attacker that wants to pass unnoticed does.
        key = ("attack", *guard_key)
        if key not in worker.guarded:
            worker.guarded[key] = (harmful_training_rows(cfg), counts)
        rows = worker.guarded[key][0]

    scaffold = None
    if config.get("strategy") == "scaffold":  # control variates: c - c_i corrects every gradient
        state_dir = client_state_dir(context.run_config, context.node_config, partition_id)
        scaffold = ScaffoldClient.begin(msg.content, state_dir, server_round, optimizer=cfg.train.optimizer)

    result = train_lora(
        worker.model,
        worker.tokenizer,
        rows,
        steps=cfg.train.local_steps,
        batch_size=cfg.train.batch_size,
        grad_accum=cfg.train.grad_accum,
        learning_rate=float(config["lr"]),
        max_seq_length=cfg.model.max_seq_length,
        seed=seed,
        optimizer=cfg.train.optimizer,
        max_grad_norm=cfg.train.max_grad_norm,
        weight_decay=cfg.train.weight_decay,
        proximal_mu=float(config.get("proximal-mu", 0.0)),
        grad_correction=scaffold.correction if scaffold is not None else None,
        on_step=lambda step: emit("step", server_round, client=site_key, step=step),
    )
    state = get_adapter_state(worker.model)
    release_memory()  # training's activations go back to the OS, not just to the allocator
    if malicious:
        state = poison_update(cfg, global_state, state)
    metrics = {
        "num-examples": result.examples,
        **result.as_metrics(),
        **counts,
        CLIENT_GUARD_SECONDS: guard_seconds,
        CLIENT_TRAIN_SECONDS: result.seconds,
        PEAK_RSS_KEY: peak_rss_mb(),
        PEAK_GPU_KEY: peak_gpu_mb(),
    }
    if "partition-id" in context.node_config:  # the server names per-client figures by it
        metrics[PARTITION_METRIC] = partition_id
    reply = RecordDict(
        {
            "arrays": to_arrays(state, cfg.federation.wire_dtype),
            "metrics": MetricRecord(metrics),
            # Where this client ran (Ray node, host): the server's per-client rows, never data.
            PLACEMENT_RECORD: ConfigRecord({**placement(), "partition-id": partition_id}),
        }
    )
    if scaffold is not None:  # the new c_i stays in the state dir; only its delta leaves
        delta = scaffold.finish(state, steps=result.steps, lr=float(config["lr"]))
        reply[CONTROL_DELTA_KEY] = to_arrays(delta, cfg.federation.wire_dtype)
    return Message(content=reply, reply_to=msg)
