"""``geoseg`` click group; subcommands are imported only when invoked (fast ``--help``)."""

from __future__ import annotations

import importlib

import click

from geoseg import __version__

COMMANDS = {
    "segment": ("geoseg.cli.segment", "segment", "Find buildings in a raster: footprints and probabilities."),
    "plan": ("geoseg.cli.plan", "plan", "Dry run: tiles, GSD, valid share, memory and model-time estimate."),
    "vectorize": ("geoseg.cli.vectorize", "vectorize", "Footprints from an existing probability raster."),
    "evaluate": ("geoseg.cli.evaluate", "evaluate", "Accuracy against reference building polygons."),
    "train": ("geoseg.cli.train", "train", "Train a model from an experiment config (resumable)."),
    "models": ("geoseg.cli.models", "models", "List installed models, show a card, export to ONNX or TorchScript."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geoseg")
def cli() -> None:
    """geoseg: find buildings in aerial and satellite imagery.

    \b
    geoseg segment ortho.tif -o buildings.gpkg
    geoseg plan ortho.tif
    geoseg vectorize prob.tif -o buildings.fgb
    geoseg models list
    """


def main() -> None:
    """The ``geoseg`` executable: click's usage errors as one line (what to fix and where the help is), exit 2."""
    import sys

    try:
        rv = cli.main(prog_name="geoseg", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `geoseg` or `geoseg models`: the help, as click shows it
        click.echo(exc.ctx.get_help(), err=True)
        sys.exit(2)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "geoseg"
        click.echo(f"{where}: error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"geoseg: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:  # Ctrl-C at a prompt or before a command took over
        click.echo("geoseg: interrupted", err=True)
        sys.exit(130)
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):  # the run is over: a late cancel ends the process without a word
        signal.signal(sig, signal.SIG_DFL)  # (Python's own Ctrl-C handler raised inside torch's exit callbacks)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
