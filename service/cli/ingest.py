"""`paperboy ingest PATH...`: read dump files into the papers table, one summary row per file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from service.cli.tables import fold_long_cells
from service.db import get_engine
from service.ingest.records import FORMATS
from service.ingest.runs import IngestReport, ingest_file

PROGRESS_MIN_BYTES = 4 << 20  # show a progress bar for files from 4 MiB
SHOWN_ISSUES = 20

console = Console()
err_console = Console(stderr=True)


def _files(paths: list[Path]) -> Iterator[Path]:
    """Files as given, and the files inside folders (recursively, sorted, hidden ones left out)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(
                    part.startswith(".") for part in child.relative_to(path).parts
                ):
                    yield child
        else:
            yield path


def _ingest_one(
    path: Path, fmt: str | None, source: str | None, today: dt.date | None, force: bool, dry_run: bool
) -> IngestReport:
    engine = get_engine()
    size = path.stat().st_size
    if size < PROGRESS_MIN_BYTES or not console.is_terminal:
        if size >= PROGRESS_MIN_BYTES:  # no bar in a log: one line says what the wait is for
            err_console.print(f"reading {path.name} ({size / 1e6:.0f} MB)", markup=False, highlight=False)
        return ingest_file(engine, path, fmt, source=source, today=today, force=force, dry_run=dry_run)
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"reading {path.name}", total=size)
        return ingest_file(
            engine,
            path,
            fmt,
            source=source,
            today=today,
            force=force,
            dry_run=dry_run,
            progress=lambda done: bar.update(task, completed=done),
        )


def _embed_new_papers() -> None:
    """Embed what was just stored (with the [semantic] extra): a bar on a terminal, lines in a log."""
    from service.config import get_settings
    from service.ingest.embeddings import embed_new_papers

    if console.is_terminal:
        with Progress(*Progress.get_default_columns(), console=console, transient=True) as bar:
            task = bar.add_task("embedding new papers for semantic matching", total=None)
            run = embed_new_papers(
                get_engine(),
                get_settings(),
                lambda done, total: bar.update(task, completed=done, total=total),
            )
    else:
        said = [0]

        def progress(done: int, total: int) -> None:
            if done == total or done - said[0] >= max(total // 10, 1):  # about every tenth
                err_console.print(
                    f"embedding new papers for semantic matching: {done}/{total}", highlight=False
                )
                said[0] = done

        run = embed_new_papers(get_engine(), get_settings(), progress)
    if run is not None and run.papers:
        console.print(
            f"embedded {run.papers} new papers for semantic matching in {run.seconds:.1f} s", highlight=False
        )


def _counts(report: IngestReport) -> str:
    """The non-zero counts in words ("89 new, 30 duplicate"): one short cell instead of four columns."""
    counts = (("new", report.new), ("updated", report.updated), ("duplicate", report.duplicate))
    said = [f"{n} {what}" for what, n in (*counts, ("rejected", report.rejected)) if n]
    return ", ".join(said) or "no papers"


def _table(reports: list[IngestReport], dry_run: bool) -> Table:
    title = "ingest (dry run: nothing stored)" if dry_run else "ingest"
    # No vertical rules, the counts in one cell and the encoding under the table (it is utf-8 for
    # nearly every file): the whole table, file names included, fits an 80-column terminal.
    table = Table(title=title, box=box.SIMPLE_HEAD)
    # Capped widths leave the file name 23 columns at 80: "listing (detected)", "done (run 12)".
    for column, cap in (("file", None), ("format", 18), ("status", 13), ("papers", 13)):
        table.add_column(column, max_width=cap)
    for r in reports:
        fmt = (r.format or "?") + (" (detected)" if r.detected and r.format else "")
        status, papers = r.status, _counts(r)
        if r.status == "skipped":
            papers = f"same as run {r.previous_run_id}"
        elif r.run_id is not None:
            status = f"{r.status} (run {r.run_id})"
        style = "red" if r.status == "failed" else ("yellow" if r.rejected else None)
        table.add_row(r.path.name, fmt, status, papers, style=style)
    return fold_long_cells(table)


def ingest_command(
    paths: list[Path] = typer.Argument(..., exists=True, help="Dump files or folders of dump files."),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help=f"Skip detection: one of {', '.join(FORMATS)}."
    ),
    source: str | None = typer.Option(None, help="Source label stored with new papers (default: file name)."),
    today: dt.datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Date the dump was taken, for dates without a year (default: today)."
    ),
    force: bool = typer.Option(False, help="Ingest even files already ingested (same SHA-256)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Parse and count, then roll back."),
) -> None:
    """Read paper dumps into the database: one transaction and one summary row per file.

    Exit status: 0 when every file was read cleanly (or skipped as already ingested), 1 when some
    lines were rejected or a file failed, 2 for bad arguments.
    """
    if fmt is not None and fmt not in FORMATS:
        err_console.print(f"[red]unknown format {fmt!r}[/red]; choose one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    files = list(_files(paths))
    if not files:
        err_console.print("no files to ingest in " + ", ".join(str(p) for p in paths))
        raise typer.Exit(2)
    day = today.date() if today else None
    reports = [_ingest_one(path, fmt, source, day, force, dry_run) for path in files]
    console.print(_table(reports, dry_run))
    if not dry_run and any(report.new or report.updated for report in reports):
        _embed_new_papers()
    for report in reports:
        if report.encoding and report.encoding not in ("utf-8", "utf-8-sig"):
            console.print(f"{report.path.name}: read as {report.encoding}", markup=False, highlight=False)
        issues = report.issues
        if not issues:
            continue
        console.print(f"[bold]{report.path}[/bold]:")
        for issue in issues[:SHOWN_ISSUES]:
            level = "error" if issue.skipped else "warning"
            console.print(f"  {report.path.name}: {issue} ({level})", markup=False, highlight=False)
        if len(issues) > SHOWN_ISSUES:
            console.print(
                f"  ... {report.rejected} rejected in all; every message is in the ingest run record"
            )
    if any(not report.ok for report in reports):
        raise typer.Exit(1)
