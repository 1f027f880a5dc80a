"""``geoseg train``: fit a model from an experiment config (TOML or YAML), resumable."""

from __future__ import annotations

import click

from geoseg.cli.errors import handle_errors


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", default=None, help="Run folder (checkpoints, log.jsonl); default runs/<name>.")
@click.option("--export", "export_dir", default=None, help="After training, write the weights (fp16 safetensors) + model card here.")
@click.option("--card", "card_extra", default=None, help="JSON with card fields to add on export (gsd_m, gsd_valid_m, tile_size, ...).")
@click.option("--int8", "int8", is_flag=True, help="On export, store the large kernels as int8 with per-channel scales (half the size; geoseg/models/weights.py).")
@handle_errors(resume="the last checkpoint")
def train(config, out_dir, export_dir, card_extra, int8):
    """Train from CONFIG, a TOML or YAML experiment (see configs/). Rerunning the same command resumes from the last checkpoint."""
    import json
    from pathlib import Path

    from geoseg.errors import ConfigError

    if not all(map(_installed, ("albumentations", "cv2"))):
        raise ConfigError("geoseg train needs the training extras: pip install 'geoseg[train]'")
    from geoseg.train.experiment import load_experiment
    from geoseg.train.fit import fit

    cfg = load_experiment(config)
    out = Path(out_dir or Path("runs") / cfg["name"])
    best = fit(cfg, out, show_progress=True)
    click.echo(f"best checkpoint: {best}", err=True)
    if export_dir:
        from geoseg.train.export import export

        extra = json.loads(Path(card_extra).read_text()) if card_extra else {}
        card = export(best, Path(export_dir), extra, "int8" if int8 else "fp16")
        click.echo(f"model card: {card}", err=True)


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (albumentations looks for updates online at import)."""
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ValueError:  # in sys.modules as None: blocked
        return False
