"""``geoseg models list`` / ``geoseg models info NAME`` (reads cards only: no torch)."""

from __future__ import annotations

import json

import click

from geoseg.cli.errors import handle_errors


@click.group()
def models() -> None:
    """Installed models and their cards."""


@models.command("list")
@handle_errors
def list_models() -> None:
    """One line per installed model."""
    from geoseg.models.card import ModelCard
    from geoseg.models.registry import ALIASES, available

    for name, path in available().items():
        card = ModelCard.load(path)
        alias = [a for a, n in ALIASES.items() if n == name]
        tag = f" (alias: {', '.join(alias)})" if alias else ""
        lo, hi = card.gsd_valid_m
        iou = card.raw.get("metrics", {}).get("val_iou")
        metric = f", val IoU {iou:.3f}" if isinstance(iou, float) else ""
        click.echo(f"{name}{tag}: {card.architecture.get('name')}-{card.architecture.get('encoder')}, GSD {card.gsd_m} m (valid {lo}-{hi} m){metric}")


@models.command("info")
@click.argument("name")
@handle_errors
def info(name: str) -> None:
    """The model card of NAME (a name, alias or card path), as JSON."""
    from geoseg.models.registry import get_card

    card = get_card(name)
    click.echo(json.dumps({"card_path": str(card.path), **card.summary()}, indent=2))
