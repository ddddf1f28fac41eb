"""`fedrai report`'s per-client, per-round screening table and heat map, from metrics rows."""

from __future__ import annotations

from fedrai.report.screening import client_figures, plot_screening_heatmap, screening_table

ROWS = [
    {"round": 0},
    {
        "round": 1,
        "clients.0.screen.margin_change": 0.01,
        "clients.0.screen.flagged": 0.0,
        "clients.2.screen.margin_change": -0.4,
        "clients.2.screen.flagged": 1.0,
        "clients.2.rejected": 1.0,
        "clients.3.norm_ratio": 0.2,
        "clients.3.agg_cosine": 1.0,
        "clients.3.agg_distance": 0.0,
    },
    {"round": 2, "clients.0.screen.margin_change": -0.02, "clients.0.screen.flagged": 0.0},
]


def test_table_has_a_row_per_client_and_counts_rejections(tmp_path):
    figures = client_figures(ROWS)
    assert set(figures) == {0, 2, 3} and figures[2][1]["screen.margin_change"] == -0.4
    lines = screening_table(ROWS)
    assert lines[0].startswith("| client | r1 | r2 |")
    row2 = next(line for line in lines if line.startswith("| 2 |"))
    assert "-0.400 ✗" in row2 and row2.endswith("| 1/1 | 1/1 |")
    row0 = next(line for line in lines if line.startswith("| 0 |"))
    assert "+0.010" in row0 and row0.endswith("| 0/2 | 0/2 |")
    assert "n=0.2 c=+1.00 ◆" in next(line for line in lines if line.startswith("| 3 |"))
    png = plot_screening_heatmap(ROWS, tmp_path / "heat.png")
    assert png is not None and png.stat().st_size > 0


def test_runs_without_per_client_figures_add_nothing(tmp_path):
    assert screening_table([{"round": 1, "train_loss": 1.0}]) == []
    assert plot_screening_heatmap([{"round": 1}], tmp_path / "x.png") is None


def test_margin_t_runs_show_the_paired_t_that_decided(tmp_path):
    rows = [
        {
            "round": 1,
            "clients.0.screen.margin_change": -0.02,
            "clients.0.screen.margin_t": -4.42,
            "clients.0.screen.flagged": 1.0,
            "clients.0.rejected": 1.0,
        }
    ]
    assert "-4.42 ✗" in screening_table(rows, "margin_t")[2]
    assert "-0.020 ✗" in screening_table(rows)[2]
    assert plot_screening_heatmap(rows, tmp_path / "t.png", signal="margin_t") is not None


def test_specificity_runs_show_the_specificity_that_decided(tmp_path):
    rows = [
        {
            "round": 2,
            "clients.1.screen.margin_t": 3.1,
            "clients.1.screen.specificity": -0.47,
            "clients.1.screen.flagged": 1.0,
            "clients.1.rejected": 1.0,
        }
    ]
    assert "-0.47 ✗" in screening_table(rows, "specificity")[2]
    assert plot_screening_heatmap(rows, tmp_path / "s.png", signal="specificity") is not None
