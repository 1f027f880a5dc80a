"""``python -m geoseg.train CONFIG.toml|CONFIG.yaml [OUT_DIR]``: train from a TOML or YAML experiment config.

What ``geoseg train CONFIG --out OUT_DIR`` does (resumable; OUT_DIR defaults to runs/<name>), with the same error
handling: bad input is one ``geoseg: error: ...`` line and exit 2, a usage error prints the usage and exits 2."""

from __future__ import annotations

import sys

from geoseg.cli.errors import handle_errors


def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="python -m geoseg.train",
                                     description="Train from an experiment config (TOML or YAML; see configs/). "
                                                 "Rerunning the same command resumes from the last checkpoint.")
    parser.add_argument("config", metavar="CONFIG", help="the experiment config (.toml, .yaml or .yml)")
    parser.add_argument("out_dir", metavar="OUT_DIR", nargs="?", help="the run folder (default runs/<name>)")
    return parser


@handle_errors(resume="the last checkpoint")
def main(argv: list[str] | None = None) -> int:
    from geoseg.train.run import train_experiment

    args = _parser().parse_args(argv)
    result = train_experiment(args.config, args.out_dir)
    print(f"best checkpoint: {result['best']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
