"""Fitting the embedded filter's head: logistic regression per mode, the threshold chosen on val
under a false-positive budget and folded into the bias, and the stacked head's projections."""

from __future__ import annotations

from typing import Any

import numpy as np

from fedrai.safety.filters.embedded import Encoder, LinearHead, embed_features
from fedrai.safety.labelled import Example


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 and AUC of unsafe probabilities ``p`` against labels ``y`` (1 = unsafe)."""
    from sklearn.metrics import roc_auc_score

    pred = p >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": auc,
    }


def flag_rate(p: np.ndarray, threshold: float) -> float:
    """Share of rows flagged at ``threshold`` (NaN for none)."""
    return float(np.mean(p >= threshold)) if len(p) else float("nan")


def choose_threshold(y: np.ndarray, p: np.ndarray, sets: list[str], max_fpr: float) -> float:
    """Lowest threshold whose val FPR is <= ``max_fpr`` on each guarded safe set (most recall).

    Guarded: ``benign`` and ``refusal`` (the sets the targets name) when present, else every
    safe set. If none reaches it, the threshold with the best F1."""
    safe_sets = sorted({s for s, lab in zip(sets, y, strict=True) if lab == 0})
    guarded = [s for s in safe_sets if s in ("benign", "refusal")] or safe_sets
    arr = np.array(sets)
    candidates = np.unique(np.concatenate([p, [0.5]]))
    best: float | None = None
    for t in candidates:  # ascending
        if all(flag_rate(p[(arr == s) & (y == 0)], t) <= max_fpr for s in guarded):
            best = float(t)
            break
    if best is None:
        best = max(candidates, key=lambda t: classification_metrics(y, p, t)["f1"])
    # put the threshold between this score and the next one down (a margin, not an exact hit)
    below = p[p < best]
    return float((best + below.max()) / 2) if len(below) else float(best)


def _logit(x: float) -> float:
    x = min(max(x, 1e-6), 1 - 1e-6)
    return float(np.log(x / (1 - x)))


def fit_mode(
    x: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    sets: dict[str, list[str]],
    kind: str,
    max_fpr: float,
    seed: int,
    set_weights: dict[str, float] | None = None,
    cs: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0),
) -> tuple[LinearHead, dict[str, Any]]:
    """Fit one mode's logistic regression (C and threshold on val) and fold the threshold
    into the bias so that 0.5 is the operating point."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils.class_weight import compute_sample_weight

    weight = compute_sample_weight("balanced", y["train"])  # = class_weight="balanced"
    for s, w in (set_weights or {}).items():
        weight = weight * np.where(np.array(sets["train"]) == s, w, 1.0)
    best: tuple[float, Any, float] | None = None
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=5000, random_state=seed)
        clf.fit(x["train"], y["train"], sample_weight=weight)
        pv = clf.predict_proba(x["val"])[:, 1]
        t = choose_threshold(y["val"], pv, sets["val"], max_fpr)
        m = classification_metrics(y["val"], pv, t)
        score = m["recall"] + m["precision"] * 0.5 + m["auc"] * 0.1
        if best is None or score > best[0]:
            best = (score, clf, t)
    assert best is not None
    _, clf, t = best
    head = LinearHead(kind, clf.coef_[0].astype(np.float32), float(clf.intercept_[0]) - _logit(t))
    return head, {"C": float(clf.C), "val_threshold_raw": t}


def evaluate(
    head: LinearHead, x: np.ndarray, y: np.ndarray, sets: list[str], threshold: float = 0.5
) -> dict[str, Any]:
    """Overall precision/recall/F1/AUC plus the flag rate of every set."""
    p = head.predict_proba(x)
    arr = np.array(sets)
    out: dict[str, Any] = classification_metrics(y, p, threshold)
    out["flag_rate_by_set"] = {
        s: {"n": int(np.sum(arr == s)), "flag_rate": flag_rate(p[arr == s], threshold)}
        for s in sorted(set(sets))
    }
    return out


def fit_projections(
    encoder: Encoder, examples: list[Example], train_rows: list[Example], seed: int
) -> dict[str, np.ndarray]:
    """The stacked head's two projections, fitted on train rows only (C=1):
    ``hp`` harmful vs benign prompt (prompt-only rows, classes balanced), ``cr`` complied vs
    refused (responses; every set weighted equally, so the few harmful compliant answers count as
    much as the benign ones: otherwise harm vocabulary, frequent in topic-naming refusals and rare
    in compliant answers, reads as "refusal")."""
    from sklearn.linear_model import LogisticRegression

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        clf = LogisticRegression(C=1.0, class_weight=None if w is not None else "balanced", max_iter=3000)
        clf.fit(x, y, sample_weight=w)
        return np.concatenate([clf.coef_[0], clf.intercept_]).astype(np.float32)

    prompts = [e for e in examples if e.response is None and e.split == "train"]
    xp = embed_features(encoder, "p", [e.prompt for e in prompts], [e.prompt for e in prompts])
    xr = embed_features(encoder, "r", [e.prompt for e in train_rows], [e.response for e in train_rows])
    complied = np.array([e.set not in ("refusal", "benign_refusal") for e in train_rows], dtype=int)
    sets = np.array([e.set for e in train_rows])
    per_set = {s: len(sets) / (np.sum(sets == s) * len(set(sets.tolist()))) for s in set(sets.tolist())}
    w = np.array([per_set[s] for s in sets])
    return {"hp": fit(xp, np.array([e.label for e in prompts])), "cr": fit(xr, complied, w)}
