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
    from fedrai.data.loading import load_rows
    from fedrai.safety.filters import build_filter
    from fedrai.safety.guard import category_key, empty_counts

    t0 = time.time()
    data_cfg = data_cfg or DataConfig(on_bad_row="skip")
    loaded = load_rows(str(path), data_cfg)
    rows = loaded.rows
    safety_filter = safety_filter or build_filter(cfg)
    t1 = time.time()
    verdicts = safety_filter.score([prompt_of(r) for r in rows], [r.get("response") for r in rows])
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
        "rows_per_s": round(len(rows) / score_s, 1) if score_s > 0 and rows else None,
        "seconds": round(time.time() - t0, 2),
        "scores_file": str(out / "scores.jsonl"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
