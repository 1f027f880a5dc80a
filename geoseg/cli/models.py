"""``geoseg models list`` / ``info NAME`` (read cards only: no torch) / ``export NAME -o PATH`` (torch, imported on use)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from geoseg.cli.errors import handle_errors


@click.group()
def models() -> None:
    """Installed models: list them, show a card, export one to ONNX or TorchScript."""


@models.command("list")
@handle_errors
def list_models() -> None:
    """One line per installed model."""
    from geoseg.models.card import ModelCard
    from geoseg.models.registry import ALIASES, scan

    found, broken = scan()
    for path, why in broken.items():  # a card with a typo must not just vanish from the list
        click.echo(f"geoseg: warning: skipped unreadable model card {path}: {why}", err=True)
    for name, path in found.items():
        card = ModelCard.load(path)
        alias = [a for a, n in ALIASES.items() if n == name]
        tag = f" (alias: {', '.join(alias)})" if alias else ""
        lo, hi = card.gsd_valid_m
        iou = card.raw.get("metrics", {}).get("val_iou")
        metric = f", val IoU {iou:.3f}" if isinstance(iou, float) else ""
        missing = "" if card.weights_path.is_file() else f" [weights missing: {card.weights_path}]"
        click.echo(f"{name}{tag}: {card.architecture.get('name')}-{card.architecture.get('encoder')}, GSD {card.gsd_m} m (valid {lo}-{hi} m){metric}{missing}")


@models.command("info")
@click.argument("name")
@handle_errors
def info(name: str) -> None:
    """The model card of NAME (a name, alias or card path), as JSON, and whether its weights match it."""
    from geoseg.errors import GeosegError
    from geoseg.models.registry import get_card

    card = get_card(name)
    try:
        card.verify_weights()
        status = "ok"
    except GeosegError as exc:
        status = str(exc)
    click.echo(json.dumps({"card_path": str(card.path), "weights_status": status, **card.summary()}, indent=2))


@models.command("export")
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write (e.g. model.onnx).")
@click.option("--format", "fmt", default="onnx", show_default=True, help="onnx or torchscript.")
@click.option("--tile-size", type=int, default=None, help="Side of the example input it is traced with; default: the model card's. "
              "The file accepts any batch, height and width (keep sides multiples of 32).")
@handle_errors
def export(name: str, output: Path, fmt: str, tile_size: int | None) -> None:
    """Export model NAME (a name, alias or card path) for other runtimes.

    \b
    Input "image": float32 (N, bands, H, W), normalised as the card says.
    Output "logits": float32 (N, classes, H, W); sigmoid for probabilities.
    ONNX needs: pip install 'geoseg[onnx]'
    """
    from geoseg.models.export import export_model

    path = export_model(name, output, fmt=fmt, tile_size=tile_size)
    size = path.stat().st_size
    click.echo(f"wrote {path} ({fmt.lower()}, {f'{size / 1e6:.1f} MB' if size >= 100_000 else f'{size} bytes'})")
