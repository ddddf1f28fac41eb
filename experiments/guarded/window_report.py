"""window.json -> a markdown table and a plot of each arm's path (AdvBench vs MT-Bench and safe-alarming
refusal, one point per evaluation).

    python experiments/guarded/window_report.py   # -> experiments/results/guarded/window.md, window.png
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path("experiments/results/guarded")


def main() -> None:
    data = json.loads((RESULTS / "window.json").read_text(encoding="utf-8"))
    ev = data["settings"]["eval"]
    lines = [
        f"Single process, no FL; {ev['advbench']} AdvBench / {ev['mtbench']} MT-Bench / "
        f"{ev['alarming_eval']} safe-alarming (EVAL families) prompts, greedy {ev['max_new_tokens']} tokens, "
        f"batch {data['settings']['batch']}, max_seq_length {data['settings']['max_seq_length']}, "
        f"LoRA r={data['settings']['lora_r']}, seed {data['settings']['seed']}.",
        "",
        "| arm | refusal rows | contrast rows | lr | step | AdvBench % | MT-Bench % | safe-alarming % | held-out loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, run in data["arms"].items():
        share, contrast, lr = run["mix"][:3]
        for p in run["points"]:
            lines.append(
                f"| {arm} | {share:.0%} | {contrast:.0%} | {lr:g} | {p['step']} | {100 * p['advbench']:.1f} | "
                f"{100 * p['mtbench']:.1f} | {100 * p['alarming']:.1f} | {p['heldout_loss']:.3f} |"
            )
    (RESULTS / "window.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, key, title in (
        (axes[0], "mtbench", "MT-Bench"),
        (axes[1], "alarming", "safe prompts, alarming words"),
    ):
        for i, (arm, run) in enumerate(data["arms"].items()):
            xs = [100 * p[key] for p in run["points"]]
            ys = [100 * p["advbench"] for p in run["points"]]
            ax.plot(xs, ys, marker="os^D"[i % 4], color=f"C{i}", label=arm)
            for p, x, y in zip(run["points"], xs, ys, strict=True):
                ax.annotate(str(p["step"]), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.axvspan(-2, 10 if key == "mtbench" else 25, color="C2", alpha=0.07)
        ax.set_xlabel(f"{title} refusal, % (lower = more helpful)")
        ax.set_xlim(-2, 102)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("AdvBench refusal, % (higher = safer)")
    axes[0].set_ylim(-2, 102)
    axes[0].legend(fontsize=8)
    fig.suptitle("The selective window: each arm's path, labelled by step (shaded: the targets)", fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / "window.png", dpi=110)


if __name__ == "__main__":
    main()
