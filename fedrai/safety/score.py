"""`fedrai safety score FILE`: a site audits its data before it joins, without training.

Writes ``scores.jsonl`` (one line per row: id, unsafe_prob, flagged, category, flags; no text)
and ``summary.json`` (flagged / not flagged counts: nothing is dropped here, the load's skipped rows, and, when
rows carry an ``origin``, the flag rate per origin).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fedrai.config import DataConfig, SafetyConfig
from fedrai.safety.filters.base import SafetyFilter


def score_file(
    path: str | Path,
    cfg: SafetyConfig,
    out_dir: str | Path,
    *,
    data_cfg: DataConfig | None = None,
    safety_filter: SafetyFilter | None = None,
) -> dict[str, Any]:
    """Score every row of ``path`` (JSONL/CSV/... as ``fedrai.data.loading`` reads it)."""
    from fedrai.data import prompt_of
    from fedrai.data.loading import DataError, load_rows
    from fedrai.safety.filters import build_filter
    from fedrai.safety.guard import category_key, empty_counts

    t0 = time.time()
    data_cfg = data_cfg or DataConfig(on_bad_row="skip")
    prompt_mode = cfg.mode == "prompt"
    try:
        loaded = load_rows(str(path), data_cfg, prompt_only=prompt_mode)
    except DataError as err:
        if not prompt_mode and _has_prompts_only(path, data_cfg):
            raise DataError(
                f"{path}: rows have prompts but no responses; mode {cfg.mode!r} judges answers "
                "(safety.mode / --mode): use mode 'prompt' to screen prompt-only rows"
            ) from err
        raise
    rows = loaded.rows
    safety_filter = safety_filter or build_filter(cfg)
    t1 = time.time()
    verdicts = safety_filter.score(
        [prompt_of(r) for r in rows], [None if prompt_mode else r.get("response") for r in rows]
    )
    score_s = time.time() - t1
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = empty_counts()
    by_origin: dict[str, list[int]] = {}
    with open(out / "scores.jsonl", "w", encoding="utf-8") as f:
        for row, v in zip(rows, verdicts, strict=True):
            flagged = v.flagged(cfg.threshold) or (v.invalid and not v.unparseable)
            counts["safety.scored"] += 1
            counts["safety.flagged"] += int(flagged)
            counts["safety.invalid"] += int(v.invalid or v.unparseable)
            counts["safety.truncated"] += int(v.truncated)
            for cat in v.categories if flagged else ():
                counts[category_key(cat)] = counts.get(category_key(cat), 0) + 1
            origin = str(row.get("origin", ""))
            by_origin.setdefault(origin, [0, 0])
            by_origin[origin][0] += 1
            by_origin[origin][1] += int(flagged)
            f.write(
                json.dumps(
                    {
                        "id": row["id"],
                        "unsafe_prob": round(v.unsafe_prob, 6),
                        "flagged": flagged,
                        "category": v.category,
                        "categories": list(v.categories),
                        "truncated": v.truncated,
                        "invalid": v.invalid,
                        "unparseable": v.unparseable,
                        "reason": v.reason,
                    }
                )
                + "\n"
            )
    # Scoring only acts on nothing: report flagged / not flagged, never kept / dropped counts.
    for acted in ("safety.kept", "safety.dropped", "safety.refused", "safety.revised"):
        counts.pop(acted, None)
    counts["safety.not_flagged"] = counts["safety.scored"] - counts["safety.flagged"]
    summary: dict[str, Any] = {
        "file": str(path),
        "backend": cfg.backend,
        "mode": cfg.mode,
        "threshold": cfg.threshold,
        "rows": len(rows),
        "skipped_rows": loaded.skipped,
        "skipped_reasons": dict(loaded.skipped_reasons),
        "counts": counts,
        "flagged_share": counts["safety.flagged"] / len(rows) if rows else 0.0,
        "by_origin": {o: {"rows": n, "flagged": k} for o, (n, k) in sorted(by_origin.items())},
        "distribution": score_distribution([v.unsafe_prob for v in verdicts if not v.invalid], cfg.threshold),
        "rows_per_s": round(len(rows) / score_s, 1) if score_s > 0 and rows else None,
        "seconds": round(time.time() - t0, 2),
        "scores_file": str(out / "scores.jsonl"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _has_prompts_only(path: str | Path, data_cfg: DataConfig) -> bool:
    """Whether ``path`` loads when answers are optional (so the answers are what is missing)."""
    from fedrai.data.loading import DataError, load_rows

    try:
        return bool(load_rows(str(path), data_cfg, prompt_only=True).rows)
    except DataError:
        return False


THRESHOLD_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def score_distribution(probs: list[float], threshold: float, bins: int = 10) -> dict[str, Any]:
    """How scores spread: counts per probability bin, quantiles, and the share each threshold of
    ``THRESHOLD_GRID`` (and the configured one) would flag; a site can judge a threshold change."""
    import numpy as np

    p = np.asarray(probs, dtype=float)
    counts = np.histogram(p, bins=bins, range=(0.0, 1.0))[0] if len(p) else np.zeros(bins, int)
    edges = np.linspace(0.0, 1.0, bins + 1)
    grid = sorted({*THRESHOLD_GRID, float(threshold)})
    return {
        "threshold": float(threshold),
        "bins": [
            {"from": round(float(a), 2), "to": round(float(b), 2), "rows": int(c)}
            for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
        ],
        "quantiles": {
            f"p{q}": round(float(np.quantile(p, q / 100)), 4) if len(p) else None
            for q in (10, 25, 50, 75, 90)
        },
        "flagged_at": {f"{t:g}": round(float(np.mean(p >= t)), 4) if len(p) else 0.0 for t in grid},
    }


def distribution_table(dist: dict[str, Any]) -> str:
    """The distribution as text: one line per bin (count and bar), marking the threshold's bin."""
    total = sum(b["rows"] for b in dist["bins"]) or 1
    t = dist["threshold"]
    lines = [f"unsafe_prob distribution (threshold {t:g}: rows >= it are flagged)"]
    for b in dist["bins"]:
        mark = "  <- threshold" if b["from"] <= t < b["to"] or (t == 1.0 and b["to"] == 1.0) else ""
        bar = "#" * round(40 * b["rows"] / total)
        lines.append(f"  [{b['from']:.1f}, {b['to']:.1f}) {b['rows']:>7} {bar}{mark}")
    flagged = ", ".join(f"{k}: {v:.1%}" for k, v in dist["flagged_at"].items())
    lines.append(f"  share flagged at threshold  {flagged}")
    return "\n".join(lines)
