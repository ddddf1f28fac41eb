"""What the plots say: labels by setting/strategy/seed, whole-number rounds, n, legends without
marks that are not drawn, round numbers once per spot. Checked on the drawn figures."""

from __future__ import annotations

from pathlib import Path

import pytest

import fedrai.report.plots as plots
from fedrai.report import load_run
from fedrai.report.plot_labels import point_labels, round_limits, round_ticks, run_labels, sample_note
from tests.test_report import make_run


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures the plot functions would save (legend texts, x ticks and titles per axes)."""
    figures: list = []

    def capture(fig, path: Path) -> None:
        legends = [leg for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if leg is not None]
        figures.append(
            {
                "legend": [t.get_text() for leg in legends for t in leg.get_texts()],
                "xticks": [list(ax.get_xticks()) for ax in fig.axes if ax.axison],
                "titles": [ax.get_title() for ax in fig.axes],
                "xlabels": [ax.get_xlabel() for ax in fig.axes],
                "ylabels": [ax.get_ylabel() for ax in fig.axes],
                "notes": [t.get_text() for ax in fig.axes for t in ax.texts],
            }
        )

    monkeypatch.setattr(plots, "_save", capture)
    return figures


def test_lines_are_labelled_by_setting_strategy_and_seed(tmp_path: Path) -> None:
    runs = [
        load_run(make_run(tmp_path, "fl__fedavg__seed0")),
        load_run(make_run(tmp_path, "fl-filter__scaffold__seed1", safety=True, strategy="scaffold", seed=1)),
        load_run(make_run(tmp_path, "twin-a", safety=True)),
        load_run(make_run(tmp_path, "twin-b", safety=True)),
    ]
    assert run_labels(runs) == [
        "FL, FedAvg, seed 0",
        "FL + filter, SCAFFOLD, seed 1",
        "FL + filter, FedAvg, seed 0 (twin-a)",  # the same setting twice: names tell them apart
        "FL + filter, FedAvg, seed 0 (twin-b)",
    ]


def test_round_ticks_are_whole_numbers_also_for_one_round() -> None:
    assert round_ticks([1.0]) == [1] and round_limits([1]) == (0.5, 1.5)
    assert round_ticks([0.0, 1.0, 2.0]) == [0, 1, 2]
    assert round_ticks(float(r) for r in range(31)) == list(range(0, 31, 3))  # at most 12 ticks
    assert round_ticks([]) == []


def test_n_of_the_per_round_and_final_sets(tmp_path: Path) -> None:
    runs = [load_run(make_run(tmp_path, "a")), load_run(make_run(tmp_path, "b", final=False))]
    assert (
        sample_note(runs, "advbench.refusal_rate") == "n = 32 prompts per round, 520 in the final set (star)"
    )
    assert sample_note(runs, "benign.refusal_rate") == "n = 16 prompts per round"
    assert sample_note(runs, "heldout.loss") is None


def test_round_numbers_are_written_once_per_spot() -> None:
    points = [(0.0, 0.0, 0, "C0"), (0.0, 0.0, 0, "C1"), (0.1, 0.0, 1, "C1"), (50.0, 60.0, 2, "C1")]
    labels = {(p.text, p.color) for p in point_labels(points)}
    assert labels == {("0,1", "black"), ("2", "C1")}


def test_tradeoff_legend_lists_only_the_marks_drawn(tmp_path: Path, drawn: list) -> None:
    plain = [load_run(make_run(tmp_path, "fl")), load_run(make_run(tmp_path, "flt", safety=True))]
    plots.plot_tradeoff(plain, tmp_path / "t.png")
    legend = drawn[-1]["legend"]
    assert "FL, FedAvg, seed 0" in legend and "FL + filter, FedAvg, seed 0" in legend
    assert not any("gate" in text for text in legend), legend  # nothing refused: no such entry
    assert "final evaluation, larger set" in legend
    assert "n = 32 prompts per round, 520 in the final set (star)" in drawn[-1]["ylabels"][0]
    gated = [load_run(make_run(tmp_path / "g", "guarded", safety=True, gated_round=2))]
    plots.plot_tradeoff(gated, tmp_path / "g.png")
    assert "candidate the gate refused" in drawn[-1]["legend"]
    assert any(text.startswith("round the gate refused") for text in drawn[-1]["legend"])


def test_curves_have_whole_round_ticks_n_and_no_cell_ids(tmp_path: Path, drawn: list) -> None:
    one = [load_run(make_run(tmp_path, "fl__fedavg__seed0", rounds=1))]
    plots.plot_overview(one, tmp_path / "o.png")
    fig = drawn[-1]
    assert fig["xticks"][0] == [0.0, 1.0]  # AdvBench: rounds 0 and 1
    train = fig["titles"].index("Client training loss")
    assert fig["xticks"][train] == [1.0]  # one training round: one tick, not 0.96-1.04
    assert "n = 32 prompts per round" in fig["titles"][0]
    assert fig["legend"] == ["FL, FedAvg, seed 0", "final evaluation, larger set"]
    assert not any("__" in text for text in fig["legend"])
    plots.plot_curves(one, plots.CURVES[0], tmp_path / "c.png")
    assert drawn[-1]["xticks"] == [[0.0, 1.0]]
