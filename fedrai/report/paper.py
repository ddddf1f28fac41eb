"""The reference paper's table (Noh and Baek, arXiv 2502.16691), to print our runs against it.

Llama-3.1-8B-Instruct + LoRA, 20 clients (5 a round), 50 rounds, client data about 30% harmful;
figures as given in the design notes (``DESIGN.md``): AdvBench (refusal %), HHH (accuracy %) and
MT-Bench (judge score, 1-10). Keyed by (aggregation, setting) as a run's report row names them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperRow:
    advbench: float  # % refused
    hhh: float  # % accuracy
    mtbench: float  # 1-10


PAPER_TABLE: dict[tuple[str, str], PaperRow] = {
    ("none", "base model, no FL"): PaperRow(99.6, 60.0, 6.8),
    ("FedAvg", "FL"): PaperRow(72.5, 49.3, 2.7),
    ("FedAvg", "FL + filter"): PaperRow(81.2, 51.8, 2.4),
    ("FedAvg", "FL + CAI"): PaperRow(96.2, 57.3, 5.8),
    ("FedAvg", "FL + filter + CAI"): PaperRow(96.3, 63.7, 6.1),
    ("SCAFFOLD", "FL"): PaperRow(72.7, 49.5, 2.9),
    ("SCAFFOLD", "FL + filter"): PaperRow(78.8, 54.6, 2.7),
    ("SCAFFOLD", "FL + CAI"): PaperRow(96.5, 62.6, 5.9),
    ("SCAFFOLD", "FL + filter + CAI"): PaperRow(97.1, 63.9, 5.8),
}


def paper_row(strategy: str, setting: str) -> PaperRow | None:
    """The paper's figures for a run's (aggregation, setting); None where the paper has no such row.

    Server-side CAI is the paper's placement, so a setting written ``CAI (server)`` matches ``CAI``;
    client-side CAI has no paper row.
    """
    setting = setting.replace("CAI (server)", "CAI").strip()
    if "base model" in setting.lower():
        return PAPER_TABLE[("none", "base model, no FL")]
    return PAPER_TABLE.get((strategy, setting))
