"""``renewal demo``: the README's main job, end to end on embedded defaults.

simulate → validate → train (and register in the local MLflow) → score → create demo keys →
serve. Each step runs the same command a user would run, so the demo cannot drift from them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def latest_usage_date(data_dir: Path) -> date:
    """The last day with usage: the natural as-of date of a data directory."""
    from features.freshness import usage_end
    from features.source import open_source
    from renewal.errors import DataContractError, Problem

    source = open_source(data_dir)  # refuses a directory without a usage table
    try:
        end = usage_end(source)
    finally:
        source.backend.disconnect()
    if end is None:
        raise DataContractError([Problem("usage", None, "table is empty")])
    return end


def first_csm(data_dir: Path) -> str | None:
    from renewal.datadir import read_table

    accounts = read_table(data_dir, "accounts")
    if accounts is None or "csm_id" not in accounts:
        return None
    ids = accounts["csm_id"].dropna().sort_values()
    return None if ids.empty else str(ids.iloc[0])


def demo(
    accounts: Annotated[int, typer.Option("--accounts", min=50, help="Simulated accounts.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Simulation seed.")] = 42,
    months: Annotated[int, typer.Option("--months", min=13, help="Simulated months.")] = 24,
    fresh: Annotated[bool, typer.Option("--fresh", help="Simulate again if data exists.")] = False,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the service.")] = True,
) -> None:
    """Run the whole product on simulated data and leave the service running with a demo key."""
    from rich.console import Console

    from renewal.cli import build_app
    from renewal.settings import get_settings

    console = Console(highlight=False)
    settings = get_settings()
    data_dir = settings.data_dir / "demo"
    app = build_app()

    def step(title: str, *args: str) -> None:
        console.rule(f"[bold]{title}")
        console.print("$ renewal " + " ".join(args), markup=False)
        app(args=list(args), prog_name="renewal", standalone_mode=False)

    if fresh or not (data_dir / "accounts.parquet").exists():
        step("1/6 simulate", "simulate", "--out", str(data_dir), "--accounts", str(accounts),
             "--seed", str(seed), "--months", str(months))
    else:
        console.print(f"reusing simulated data in {data_dir} (--fresh to simulate again)")
    step("2/6 validate", "validate", "--data", str(data_dir))
    as_of = latest_usage_date(data_dir).isoformat()
    step("3/6 train and register", "train", "--data", str(data_dir),
         "--out", str(settings.data_dir / "demo-training"), "--seed", str(seed))
    step("4/6 score", "score", "--data", str(data_dir), "--as-of", as_of)
    step("5/6 demo API keys", "keys", "create", "--role", "admin", "--name", "demo-admin")
    csm = first_csm(data_dir)
    if csm:
        step("   a CSM's key (sees only their accounts)", "keys", "create", "--role", "csm",
             "--csm-id", csm, "--name", f"demo-{csm}")
    base = f"http://{host}:{port}"
    console.rule("[bold]try it")
    console.print(
        f"export KEY=<the admin key printed above>\n"
        f"curl -s -H \"Authorization: Bearer $KEY\" '{base}/v1/risk-list?max_probability=0.5'\n"
        f"curl -s -H \"Authorization: Bearer $KEY\" {base}/v1/model\n"
        f"OpenAPI document (with the key): {base}/openapi.json",
        markup=False,
    )
    if serve:
        step("6/6 serve", "serve", "--host", host, "--port", str(port))
