"""The federated GPU benchmark's CPU path: a tiny model through the real simulation, JSON written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_gpu_federated_benchmark_cpu_path(tmp_path: Path) -> None:
    import torch

    from benchmarks.gpu_qlora_federated import NO_GPU_NOTE, main

    out = tmp_path / "gpu.json"
    args = ["--small", "--clients", "2", "--rounds", "1", "--steps", "1", "--work", str(tmp_path / "w")]
    result = main([*args, "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["gpu_available"] == torch.cuda.is_available()
    if not result["gpu_available"]:
        assert result["note"] == NO_GPU_NOTE and result["setting"]["quantization"] == "none"
    assert [c["round"] for c in result["clients"]] == [1, 1]
    assert all(c["step_seconds"] > 0 and c["peak_rss_mb"] > 50 for c in result["clients"])
    assert len(result["round_seconds"]) == 1 and result["round_seconds"][0] > 0
