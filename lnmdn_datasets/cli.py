"""``lnmdn datasets``: list, build, verify, convert and download demonstration datasets.

Wired into the ``lnmdn`` command by ``lnmdn_agents.cli`` (``SUBCOMMANDS["datasets"]``); it imports
no torch, and neither does ``lnmdn`` on the way here::

    lnmdn datasets list
    lnmdn datasets build lnmdn/pusht/expert-v0        # or --all; --force rebuilds
    lnmdn datasets verify lnmdn/pusht/expert-v0       # replay self-test
    lnmdn datasets convert pusht-zarr pusht_cchi_v7_replay.zarr --id lnmdn/pusht/dp-human-v0
    lnmdn datasets convert robomimic can/ph/low_dim_v15.hdf5 --id lnmdn/can/robomimic-ph-v0
    lnmdn datasets download D4RL/pointmaze/umaze-v2
"""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="datasets",
    help="Demonstration datasets (Minari): list, build, verify, convert, download.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@app.command("list", short_help="Recipes, embedded and local datasets.")
def list_cmd() -> None:
    """List the recipes, the embedded datasets and the local Minari datasets."""
    import minari

    from lnmdn_datasets.embedded import embedded_dataset_ids
    from lnmdn_datasets.minari_io import minari_root
    from lnmdn_datasets.recipes import RECIPES

    local = minari.list_local_datasets()
    embedded = set(embedded_dataset_ids())
    typer.echo(f"Minari root: {minari_root()}")
    header = f"{'dataset id':34} {'task':28} {'status':9} {'episodes':>8} {'steps':>8} "
    typer.echo(header + f"{'MB':>6} {'expert success':>14}")
    ids = list(RECIPES) + sorted(set(local) - set(RECIPES))
    for dataset_id in ids:
        recipe = RECIPES.get(dataset_id)
        meta = local.get(dataset_id)
        task = recipe.task_id if recipe else "-"
        if meta is not None:
            status = "local"
            episodes, steps = str(meta["total_episodes"]), str(meta["total_steps"])
            size = f"{float(meta.get('dataset_size', 0.0)):.1f}"
            rate = meta.get("expert_success_rate")
            success = f"{rate:.3f}" if isinstance(rate, (int, float)) else "-"
        else:
            status = "embedded" if dataset_id in embedded else "missing"
            episodes = str(recipe.n_episodes) if recipe else "-"
            steps = size = success = "-"
        typer.echo(
            f"{dataset_id:34} {task:28} {status:9} {episodes:>8} {steps:>8} {size:>6} {success:>14}"
        )
    typer.echo("Build a missing one with: lnmdn datasets build ID (or --all).")


@app.command(short_help="Build datasets with their experts.")
def build(
    dataset_ids: Annotated[
        list[str] | None, typer.Argument(help="Dataset ids (see `lnmdn datasets list`).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Build every recipe.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild with the expert, replacing existing data.")
    ] = False,
    episodes: Annotated[
        int | None,
        typer.Option(
            "--episodes", min=1, help="Override the recipe's episode count (quick tries)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes running episodes at once (default: every core, at most 8); the "
            "dataset is the same for any number.",
        ),
    ] = None,
) -> None:
    """Run the experts and write their Minari datasets (atomically; seeded, reproducible)."""
    import minari

    from lnmdn_datasets.embedded import embedded_path, install_embedded
    from lnmdn_datasets.recipes import RECIPES, build_workers, get_recipe
    from lnmdn_datasets.recipes import build as build_recipe

    ids = list(RECIPES) if all_ else list(dataset_ids or [])
    if not ids:
        raise _fail(f"give dataset ids or --all; recipes: {sorted(RECIPES)}")
    try:
        recipes = [get_recipe(i) for i in ids]
    except KeyError as err:
        raise _fail(str(err.args[0])) from None
    local = minari.list_local_datasets()
    for recipe in recipes:
        if recipe.dataset_id in local and not force:
            typer.echo(f"{recipe.dataset_id}: already built (use --force to rebuild)")
            continue
        if not force and episodes is None and embedded_path(recipe.dataset_id).is_file():
            install_embedded(recipe.dataset_id)
            typer.echo(f"{recipe.dataset_id}: installed the embedded copy (same recipe and seeds)")
            continue
        try:
            report = build_recipe(
                recipe, force=force, n_episodes=episodes, workers=workers or build_workers()
            )
        except (FileExistsError, RuntimeError, ImportError) as err:
            raise _fail(str(err)) from None
        typer.echo(
            f"{recipe.dataset_id}: {report.succeeded} episodes, "
            f"{sum(len(e) for e in report.episodes)} steps, expert success "
            f"{report.success_rate:.3f} ({report.succeeded}/{report.attempted}), "
            f"{report.seconds:.1f} s"
        )


@app.command(short_help="Replay self-test and content checksum.")
def verify(
    dataset_id: Annotated[
        str, typer.Argument(help="A local dataset with stored simulator states.")
    ],
    episodes: Annotated[
        int | None, typer.Option("--episodes", min=1, help="Replay the first N.")
    ] = None,
    atol: Annotated[
        float | None, typer.Option(help="Also require observations within ATOL of the recorded.")
    ] = None,
) -> None:
    """Replay self-test: reset to each demonstration's first state and replay its actions."""
    from lnmdn_datasets.verify import verify as verify_dataset

    try:
        report = verify_dataset(dataset_id, n_episodes=episodes, atol=atol)
    except (FileNotFoundError, ValueError) as err:
        raise _fail(str(err)) from None
    typer.echo(
        f"{dataset_id}: {report.reproduced}/{report.checked} episodes reproduced, max observation "
        f"error {report.max_obs_error:.3g}"
    )
    if report.recorded_checksum is None:
        state = "no checksum recorded (made before lnmdn recorded them)"
    elif report.checksum_ok:
        state = "matches the one recorded when it was made"
    else:
        state = f"DIFFERS from the one recorded when it was made, {report.recorded_checksum}"
    typer.echo(f"{dataset_id}: content sha256 {report.checksum} ({state})")
    if report.reproduced != report.checked:
        raise _fail(f"replay did not reproduce episodes {report.mismatched[:20]}")
    if not report.checksum_ok:
        raise _fail(
            f"{dataset_id}'s arrays changed after it was written; rebuild it with "
            f"`lnmdn datasets build {dataset_id} --force`"
        )


class SourceFormat(str, Enum):
    """Formats :func:`convert` reads."""

    pusht_zarr = "pusht-zarr"
    robomimic = "robomimic"


@app.command(short_help="Convert a Push-T zarr or robomimic hdf5.")
def convert(
    source_format: Annotated[SourceFormat, typer.Argument(help="pusht-zarr or robomimic.")],
    path: Annotated[Path, typer.Argument(help="The source (zarr folder or hdf5 file).")],
    dataset_id: Annotated[
        str, typer.Option("--id", help="Minari id to write, e.g. lnmdn/pusht/dp-human-v0.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing dataset.")] = False,
) -> None:
    """Convert Diffusion Policy's Push-T zarr or a robomimic hdf5 into a Minari dataset."""
    from lnmdn_datasets import converters

    fn = {
        SourceFormat.pusht_zarr: converters.convert_pusht_zarr,
        SourceFormat.robomimic: converters.convert_robomimic_hdf5,
    }[source_format]
    try:
        out = fn(path, dataset_id, force=force)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        raise _fail(str(err)) from None
    typer.echo(f"wrote {dataset_id} to {out}")


@app.command(short_help="Download a hosted Minari dataset.")
def download(
    dataset_id: Annotated[str, typer.Argument(help="e.g. D4RL/pointmaze/umaze-v2")],
) -> None:
    """Download a remote Minari dataset; offline, a clear message instead of a traceback."""
    from lnmdn_datasets.download import DatasetDownloadError, download_dataset

    try:
        download_dataset(dataset_id)
    except DatasetDownloadError as err:
        raise _fail(str(err)) from None
    typer.echo(f"downloaded {dataset_id}")


@app.command(short_help="Pack a local dataset into an .npz.")
def pack(
    dataset_id: Annotated[str, typer.Argument(help="A local dataset.")],
    output: Annotated[
        Path | None, typer.Option(help="Default: lnmdn_datasets/embedded/<id>.npz")
    ] = None,
) -> None:
    """Pack a local dataset into a compressed .npz (what ships in lnmdn_datasets/embedded/)."""
    from lnmdn_datasets.embedded import export_embedded

    out = export_embedded(dataset_id, output)
    typer.echo(f"packed {dataset_id} into {out} ({out.stat().st_size / 1e6:.2f} MB)")
