"""Local training, server aggregation and the simulated federation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fedrai.config.base import STRATEGY_NAMES, Section


class TrainConfig(Section):
    """Local LoRA SFT on each client, per round."""

    local_steps: int = Field(10, ge=1, description="Optimizer steps per client per round.")
    batch_size: int = Field(4, ge=1, description="Examples per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    optimizer: Literal["adamw", "sgd"] = Field(
        "adamw", description="Local optimizer (fresh each round; SCAFFOLD's theory assumes sgd)."
    )
    learning_rate: float = Field(2e-4, gt=0.0, description="Peak learning rate of the first round.")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "cosine", description="How the learning rate decays across rounds (constant within a round)."
    )
    min_lr_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Final learning rate as a share of the peak."
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping (0 = off).")


class StrategyConfig(Section):
    """Server-side aggregation, by name, with the knobs of Flower's strategies."""

    name: str = Field(
        "fedavg",
        description=", ".join(STRATEGY_NAMES) + ".",
    )
    fraction_train: float = Field(1.0, gt=0.0, le=1.0, description="Share of clients sampled each round.")
    min_train_clients: int = Field(2, ge=1, description="Fewest clients a round trains on.")
    min_available_clients: int = Field(
        2, ge=1, description="Clients that must be connected before a round starts."
    )
    proximal_mu: float = Field(
        0.01, ge=0.0, description="FedProx proximal term weight (clients add it to their loss)."
    )
    server_learning_rate: float = Field(
        1.0, gt=0.0, description="FedAvgM / SCAFFOLD server step size (1.0 = the clients' average)."
    )
    fedopt_eta: float = Field(
        0.01,
        gt=0.0,
        description="FedAdam / FedYogi / FedAdagrad server step size (eta): a step per coordinate, so not the "
        "FedAvgM scale; at 1.0 FedAdam moved each LoRA weight tens of times its clients' change and the CPU "
        "quick-start's held-out loss went 1.83 -> 11.0 in one round.",
    )
    server_momentum: float = Field(0.9, ge=0.0, lt=1.0, description="FedAvgM momentum.")
    beta_1: float = Field(0.9, ge=0.0, lt=1.0, description="FedAdam / FedYogi first moment decay.")
    beta_2: float = Field(0.99, ge=0.0, lt=1.0, description="FedAdam / FedYogi second moment decay.")
    tau: float = Field(1e-3, gt=0.0, description="FedOpt adaptivity (epsilon).")
    trim_beta: float = Field(0.2, ge=0.0, lt=0.5, description="FedTrimmedAvg: share trimmed at each end.")
    num_malicious_clients: int = Field(
        0, ge=0, description="Krum / MultiKrum / Bulyan: assumed Byzantine clients."
    )
    krum_select: int = Field(
        1, ge=1, description="MultiKrum: replies kept (the lowest Krum scores) and averaged."
    )


class FederationConfig(Section):
    """The simulated federation and what travels."""

    num_clients: int = Field(4, ge=1, description="Clients (Flower SuperNodes) in the simulation.")
    num_rounds: int = Field(3, ge=1, description="Federated rounds.")
    cpus_per_client: int = Field(1, ge=1, description="Ray CPUs per ClientApp (whole CPUs).")
    gpus_per_client: float = Field(0.0, ge=0.0, description="Ray GPUs per ClientApp (fractions share a GPU).")
    ray_address: str = Field(
        "",
        description="Ray cluster the clients run on: `auto` (the one this machine joined with `ray start`), "
        "`HOST:PORT` (its GCS) or `ray://HOST:PORT` (Ray Client); empty = a private local Ray per run.",
    )
    wire_dtype: Literal["float32", "float16"] = Field(
        "float32",
        description="dtype of adapter tensors on the wire (bf16 is cast; Flower arrays cannot hold it).",
    )
    round_timeout_s: float = Field(3600.0, gt=0.0, description="How long the server waits for replies.")
