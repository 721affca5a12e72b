"""`kling weights list | fetch | verify`: the standard weight files of kling.weights.REGISTRY."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from kling import weights as reg
from kling.paths import weights_dir

weights_app = typer.Typer(help="List, fetch and verify standard weight files in $KLING_WEIGHTS.", no_args_is_help=True)
console = Console()


@weights_app.command("list")
def list_weights() -> None:
    """Show every registered file, whether it is present, and where it comes from."""
    table = Table(title=f"weights in {weights_dir()}")
    for col in ("name", "present", "file", "used by", "source"):  # in an 80-column terminal the last three fold
        table.add_column(col, no_wrap=col in ("name", "present"), overflow="fold")
    for name in sorted(reg.REGISTRY):
        row = reg.describe(name)
        table.add_row(name, "yes" if row["present"] else "no", row["filename"], row["used_by"], row["url"])
    console.print(table)


def _names(name: str | None, all_: bool) -> list[str]:
    if all_ or name is None:
        return sorted(reg.REGISTRY)
    reg.get_weight(name)
    return [name]


@weights_app.command("fetch")
def fetch(name: str = typer.Argument(None, help="registry name; all when omitted"), all_: bool = typer.Option(False, "--all")) -> None:
    """Download into $KLING_WEIGHTS and verify. Offline, fails with the manual alternative."""
    failed = False
    for n in _names(name, all_):
        try:
            from tqdm import tqdm

            bar = tqdm(unit="B", unit_scale=True, desc=n, leave=False)

            def progress(nbytes: int, total: int) -> None:
                bar.total = total or None
                bar.update(nbytes)

            try:
                v = reg.fetch(n, progress=progress)
            finally:
                bar.close()
            console.print(f"{n}: {'ok' if v.ok else 'FAILED'} ({v.detail})")
            failed |= not v.ok
        except RuntimeError as exc:
            console.print(f"[red]{n}: {exc}[/red]")
            failed = True
    if failed:
        raise typer.Exit(1)


@weights_app.command("verify")
def verify(name: str = typer.Argument(None, help="registry name; all present files when omitted")) -> None:
    """Check placed files against the published hash or the local pin (pinning new files)."""
    bad = False
    for n in _names(name, False):
        v = reg.verify(n)
        if not v.present:
            if name is not None:
                console.print(f"[red]{n}: {v.detail}; fetch with `{reg.get_weight(n).fetch_command}`[/red]")
                bad = True
            else:
                console.print(f"{n}: not present")
            continue
        console.print(f"{n}: {'ok' if v.ok else '[red]FAILED[/red]'} sha256={v.sha256} ({v.detail})")
        bad |= not v.ok
    sys.stdout.flush()
    if bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
