"""`paperboy eval relevance DIR`: measure paperboy's ranking against the usual alternatives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from service.config import get_settings

eval_app = typer.Typer(help="Measure matching quality on a labelled set.", no_args_is_help=True)


@eval_app.command("relevance")
def relevance_command(
    directory: Path = typer.Argument(..., help="A set: papers.jsonl and profiles.jsonl (see README)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
    lexical_only: bool = typer.Option(
        False, "--lexical-only", help="Lexical path only, even when the semantic extra is installed."
    ),
    cache: Path | None = typer.Option(
        None, help="Embedding cache file (default VAR_DIR/cache/eval-embeddings.npz)."
    ),
    rounds: int = typer.Option(
        0,
        "--rounds",
        min=0,
        help="Replay the set as N chronological batches with a simulated reader's feedback "
        "(nDCG@10 and P@10 per round) instead of one snapshot.",
    ),
    method: list[str] = typer.Option(
        [],
        "--method",
        help="Run only this method (repeat for several), e.g. --method paperboy to measure a change.",
    ),
) -> None:
    """Print P@10, nDCG@10 and R@50 per method and profile kind (keywords, seeds, both)."""
    from service.matching.evaluation import METHODS, DatasetError, evaluate, format_table, load_dataset
    from service.matching.replay import REPLAY_METHODS, format_rounds, replay

    known = REPLAY_METHODS if rounds else METHODS
    unknown = [m for m in method if m not in known]
    if unknown:
        typer.echo(f"error: --method: unknown method {unknown[0]!r}; one of: {', '.join(known)}", err=True)
        raise typer.Exit(2)
    methods = tuple(method) or known
    from service.matching.semantic import MiniLMEmbedder, NpzEmbeddingCache, semantic_available

    settings = get_settings()
    try:
        dataset = load_dataset(directory)
    except DatasetError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    embedder = None
    if not lexical_only and settings.semantic:
        if semantic_available():
            embedder = MiniLMEmbedder()
        else:
            typer.echo("note: [semantic] extra not installed; lexical path only", err=True)
    store = NpzEmbeddingCache(cache or settings.var_dir / "cache" / "eval-embeddings.npz")
    say = lambda message: typer.echo(message, err=True)  # noqa: E731
    if rounds:
        try:
            replayed = replay(dataset, rounds, embedder=embedder, cache=store, methods=methods, progress=say)
        except ValueError as error:
            typer.echo(f"error: --{error}", err=True)
            raise typer.Exit(2) from error
        heading = f"{dataset.path}: {len(dataset.papers)} papers in {rounds} rounds"
        _print_report(heading, format_rounds(replayed), replayed.notes, replayed.seconds)
        _write_json(json_out, replayed.to_dict())
        return
    report = evaluate(dataset, embedder=embedder, cache=store, methods=methods, progress=say)
    heading = f"{dataset.path}: {report.papers} papers, {report.profiles} profiles"
    _print_report(heading, format_table(report), report.notes, report.seconds)
    _write_json(json_out, report.to_dict())


def _print_report(heading: str, table: str, notes: list[str], seconds: float) -> None:
    typer.echo(heading)
    typer.echo(table)
    for note in notes:
        typer.echo(f"note: {note}")
    typer.echo(f"({seconds:.1f} s)")


def _write_json(path: Path | None, figures: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


@eval_app.command("digests")
def digests_command(
    directory: Path = typer.Argument(..., help="A set: papers.jsonl and profiles.jsonl (see README)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
    lexical_only: bool = typer.Option(
        False, "--lexical-only", help="Lexical path only, even when the semantic extra is installed."
    ),
    day_size: int | None = typer.Option(
        None, min=10, help="Papers a day (one digest a day); default: one digest of the whole set."
    ),
    profiles: str = typer.Option("all", help="all, even or odd: the profiles (by line) to measure."),
    cache: Path | None = typer.Option(
        None, help="Embedding cache file (default VAR_DIR/cache/eval-embeddings.npz)."
    ),
) -> None:
    """What digests send, without and with the cut-off: precision, empty digests, papers a digest."""
    from service.digest.quality import format_digest_table, measure_digests
    from service.matching.evaluation import DatasetError, load_dataset
    from service.matching.semantic import MiniLMEmbedder, NpzEmbeddingCache, semantic_available

    settings = get_settings()
    if profiles not in ("all", "even", "odd"):
        typer.echo(f"error: --profiles {profiles!r}: use all, even or odd", err=True)
        raise typer.Exit(2)
    try:
        dataset = load_dataset(directory)
    except DatasetError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    chosen = dataset.profiles if profiles == "all" else dataset.profiles[profiles == "odd" :: 2]
    embedder = MiniLMEmbedder() if not lexical_only and settings.semantic and semantic_available() else None
    store = NpzEmbeddingCache(cache or settings.var_dir / "cache" / "eval-embeddings.npz")
    report = measure_digests(
        dataset,
        embedder=embedder,
        cache=store,
        profiles=chosen,
        day_size=day_size,
        progress=lambda m: typer.echo(m, err=True),
    )
    typer.echo(
        f"{dataset.path}: {report.profiles} profiles ({profiles}), {report.days} digest(s) each of "
        f"{report.day_size} papers, {'semantic' if report.semantic else 'lexical only'}"
    )
    typer.echo(format_digest_table(report))
    typer.echo(f"({report.seconds:.1f} s)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
