"""`fedrai safety ...`: score a data file, train the embedded filter's head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fedrai.cli.common import fail
from fedrai.config import SafetyConfig

app = typer.Typer(
    no_args_is_help=True,
    help="Safety filter: score data, audit what a run's guards did, train the filter head.",
)


@app.command("score")
def score(
    file: Annotated[Path, typer.Argument(help="JSONL / CSV of rows (prompt+response or messages).")],
    out: Annotated[Path, typer.Option(help="Where scores.jsonl and summary.json go.")] = Path(
        "safety-scores"
    ),
    backend: Annotated[
        str, typer.Option(help="factored | embedded | cross_encoder | llama_guard | detoxify")
    ] = "factored",
    mode: Annotated[
        str, typer.Option(help="prompt | response | response_in_context")
    ] = "response_in_context",
    threshold: Annotated[float, typer.Option(help="Flag at or above this unsafe probability.")] = 0.5,
    head: Annotated[
        str | None, typer.Option(help="Factored / embedded: head file (default: shipped).")
    ] = None,
    llama_guard_model: Annotated[str | None, typer.Option(help="Llama Guard hub id or local dir.")] = None,
    detoxify_checkpoint: Annotated[str | None, typer.Option(help="Detoxify checkpoint (offline).")] = None,
    detoxify_config_dir: Annotated[str | None, typer.Option(help="Detoxify HF config dir (offline).")] = None,
    prompt_field: Annotated[str, typer.Option(help="Prompt column.")] = "prompt",
    response_field: Annotated[str, typer.Option(help="Response column.")] = "response",
) -> None:
    """Score every row of FILE with the filter; no training, nothing leaves the machine."""
    from fedrai.assets import AssetError
    from fedrai.config import DataConfig
    from fedrai.data.loading import DataError
    from fedrai.safety.score import distribution_table, score_file

    fields: dict[str, object] = {
        "backend": backend,
        "mode": mode,
        "threshold": threshold,
        "head_path": head,
        "detoxify_checkpoint": detoxify_checkpoint,
        "detoxify_config_dir": detoxify_config_dir,
    }
    if llama_guard_model:
        fields["llama_guard_model"] = llama_guard_model
    try:
        cfg = SafetyConfig(**fields)  # type: ignore[arg-type]
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    data_cfg = DataConfig(on_bad_row="skip", prompt_field=prompt_field, response_field=response_field)
    from fedrai.quiet import routed_warnings

    try:
        with routed_warnings(out / "warnings.log") as routed:  # library warnings off the console
            summary = score_file(file, cfg, out, data_cfg=data_cfg)
    except (DataError, AssetError, OSError, ValueError) as err:  # bad file or mode for the backend: one line
        fail(" ".join(str(err).split()))
    typer.echo(distribution_table(summary["distribution"]))
    typer.echo(
        json.dumps({k: summary[k] for k in ("rows", "skipped_rows", "flagged_share", "counts")}, indent=2)
    )
    typer.echo(
        f"scoring only, nothing was changed: {summary['counts']['safety.flagged']} rows flagged "
        f"(a client with safety.action = 'drop' would drop them), "
        f"{summary['counts']['safety.not_flagged']} not flagged"
    )
    typer.echo(f"wrote {out / 'scores.jsonl'} and {out / 'summary.json'}")
    if routed.note():
        typer.echo(routed.note(), err=True)


@app.command("audit")
def audit(
    run_dir: Annotated[
        Path, typer.Argument(help="Run dir (reads clients/*/safety_audit.jsonl) or one client's state dir.")
    ],
    show_texts: Annotated[
        bool,
        typer.Option("--show-texts", help="Also print the texts of acted-on rows (local audit only)."),
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the summary as JSON.")] = None,
) -> None:
    """Per client: what the filter and CAI dropped, refused or revised, and why (counts only)."""
    from fedrai.safety.audit_summary import AuditError, render, summarise

    try:
        audits = summarise(run_dir, show_texts=show_texts)
    except AuditError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for line in render(audits):
        typer.echo(line)
    if show_texts:
        for a in audits:
            for rec in a.texts:
                typer.echo(json.dumps({"client": a.name, **rec}, ensure_ascii=False))
    else:
        typer.echo("(counts only; --show-texts prints the texts held in these local audits)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([a.as_dict() for a in audits], indent=2) + "\n", encoding="utf-8")
        typer.echo(f"wrote {json_out}")


@app.command("train-filter")
def train_filter_cmd(
    out: Annotated[
        Path, typer.Option(help="Head file to write (.npz; a .json record goes beside it).")
    ] = Path("safety-head.npz"),
    data: Annotated[
        Path | None, typer.Option(help="Labelled JSONL: prompt, response, label (default: offline sources).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Split and sampling seed.")] = 0,
    benign: Annotated[int, typer.Option(help="Benign instructlab pairs in the default data.")] = 3000,
    max_fpr: Annotated[
        float, typer.Option(help="Threshold: highest val false-positive rate per safe set.")
    ] = 0.03,
    max_seq_length: Annotated[int, typer.Option(help="Encoder tokens per text.")] = 128,
    encoder_dtype: Annotated[
        str | None,
        typer.Option(
            help="Encoder compute dtype the head is trained for (default: factored float32, embedded bfloat16)."
        ),
    ] = None,
    embed_cache: Annotated[Path | None, typer.Option(help="Reuse/save embeddings in this .npz.")] = None,
    design: Annotated[
        str,
        typer.Option(
            help="factored (prompt-harm x complies heads on frozen MiniLM; the default backend), embedded "
            "(one logistic head over the exchange) or cross_encoder (MiniLM + LoRA)."
        ),
    ] = "factored",
    contrast: Annotated[
        bool, typer.Option(help="Add the templated contrast data (fedrai.data.contrast) to the default data.")
    ] = True,
    epochs: Annotated[int, typer.Option(help="cross_encoder: passes over the sampled rows.")] = 1,
    cap_per_group: Annotated[int, typer.Option(help="cross_encoder: most rows per (source, set).")] = 150,
) -> None:
    """Train a filter (head or cross-encoder) and report held-out figures."""
    from fedrai.safety.filter_data import filter_examples
    from fedrai.safety.labelled import load_labelled_jsonl
    from fedrai.safety.train_head import train_filter

    examples = load_labelled_jsonl(data, seed) if data else filter_examples(seed, benign, contrast=contrast)
    if design == "cross_encoder":
        from fedrai.safety.train_cross import train_cross_encoder

        meta = train_cross_encoder(
            out.with_suffix(""),
            examples,
            max_length=max_seq_length,
            epochs=epochs,
            cap_per_group=cap_per_group,
            max_fpr=max_fpr,
            seed=seed,
            log=typer.echo,
        )
        typer.echo(f"wrote {out.with_suffix('')}/ ({meta['train_seconds']} s)")
        return
    if design == "factored":
        from fedrai.safety.train_factored import train_factored

        if data:
            raise typer.BadParameter(
                "--design factored learns refused/complied from the offline sources' sets; a --data file "
                "labels rows only safe/unsafe: use --design embedded with --data"
            )
        record = train_factored(
            out,
            examples,
            max_seq_length=max_seq_length,
            encoder_dtype=encoder_dtype or "float32",
            embed_cache=embed_cache,
            max_fpr=max_fpr,
            seed=seed,
            log=typer.echo,
        )
        typer.echo(f"wrote {out} and {out.with_suffix('.json')} ({record['train_seconds']} s)")
        return
    if design != "embedded":
        raise typer.BadParameter(f"--design {design!r}: expected factored, embedded or cross_encoder")

    record = train_filter(
        out,
        data=data,
        examples=examples,
        seed=seed,
        n_benign=benign,
        max_fpr=max_fpr,
        max_seq_length=max_seq_length,
        encoder_dtype=encoder_dtype or "bfloat16",
        embed_cache=embed_cache,
        log=typer.echo,
    )
    typer.echo(f"wrote {out} and {out.with_suffix('.json')} ({record['train_seconds']} s)")
