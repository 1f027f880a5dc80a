"""``geoseg train``: fit a model from an experiment config (TOML or YAML), resumable."""

from __future__ import annotations

import click

from geoseg.cli import options as o
from geoseg.cli.errors import done, handle_errors


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", default=None, help="Run folder (checkpoints, log.jsonl); default runs/<name>.")
@click.option("--export", "export_dir", default=None, help="After training, write the weights (fp16 safetensors) + model card here.")
@click.option("--card", "card_extra", default=None, help="JSON with card fields to add on export (gsd_m, gsd_valid_m, tile_size, ...).")
@click.option("--int8", "int8", is_flag=True, help="On export, store the large kernels as int8 with per-channel scales (half the size; geoseg/models/weights.py).")
@o.progress
@handle_errors(resume="the last checkpoint")
def train(config, out_dir, export_dir, card_extra, int8, progress_mode):
    """Train from CONFIG, a TOML or YAML experiment (see configs/). Rerunning the same command resumes from the last checkpoint."""
    import shlex

    from geoseg.train.run import train_experiment

    command = ["geoseg", "train", config] + (["--out", out_dir] if out_dir else [])  # the card records how it was made
    command += ["--export", export_dir] if export_dir else []
    command += (["--card", card_extra] if card_extra else []) + (["--int8"] if int8 else [])
    result = train_experiment(config, out_dir, export_dir, card_extra, int8, show_progress=o.make_progress(progress_mode),
                              train_command=shlex.join(command))
    text = f"best checkpoint: {result['best']}" + (f"\nmodel card: {result['card']}" if "card" in result else "")
    done({"best": str(result["best"]), "card": str(result["card"]) if "card" in result else None}, text)
