"""Options shared by several commands, so a flag means the same thing everywhere."""

from __future__ import annotations

import click

from geoseg.config import VectorizeConfig

model = click.option("--model", "-m", default="default", show_default=True, help="Model name (see `geoseg models list`) or a model card path (*.json).")


class GsdType(click.ParamType):
    """Metres, or ``native``."""

    name = "GSD"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float) or value == "native":
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither metres (e.g. 0.3) nor 'native'", param, ctx)


gsd = click.option("--gsd", type=GsdType(), default=None,
                   help="Ground resolution (m) to run the model at, or 'native' for the input's own (kept inside the model's "
                        "valid range); default: the model's GSD, which scored best for the default model on coarse imagery "
                        "(docs/imagery_gsd.md).")
tile_size = click.option("--tile-size", type=int, default=None, help="Tile size in pixels (multiple of 32); default: the model card's.")
overlap = click.option("--overlap", type=int, default=None, help="Overlap between tiles in pixels; default: the model card's.")
tta = click.option("--tta", type=click.Choice(["none", "flip", "d4"]), default="none", show_default=True,
                   help="Test-time augmentation: average the model over 4 flips (flip) or all 8 rotations/mirrors (d4); 4x or 8x slower.")
tta_scales = click.option("--tta-scales", default=None, metavar="S[,S...]",
                          help="Multi-scale inference: also run each tile resized by these zoom factors and average, "
                               "e.g. 1,0.5 adds a pass at twice the GSD (docs/tta.md); a pass at scale s costs s^2.")
batch_size = click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Tiles per forward pass.")
bands = click.option("--bands", default=None, help="Source bands in model order, 1-based, e.g. 3,2,1; default: the first data bands.")
threshold = click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Probability threshold (0-1); default: the model card's.")
min_area = click.option("--min-area", type=click.FloatRange(min=0), default=VectorizeConfig.min_area_m2, show_default=True, help="Drop footprints smaller than this (m2).")
min_part = click.option("--min-part", type=click.FloatRange(min=0), default=VectorizeConfig.min_part_m2, show_default=True,
                        help="When touching buildings are split, a piece smaller than this (m2) joins its neighbour; 0 keeps every piece.")
border_cut = click.option("--border-cut", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
                          help="Split touching buildings where the model's border/gap probability is at least this (0-1]; "
                               "lower splits more; default: the model card's (0.5 unless it says otherwise).")
simplify = click.option("--simplify", type=click.FloatRange(min=0), default=None, help="Simplification tolerance (m); default: one pixel.")
regularize = click.option("--regularize/--no-regularize", default=False, show_default=True, help="Square building outlines (falls back to the raw outline when squaring distorts it).")
split_window = click.option(
    "--split-window", type=click.IntRange(min=768), default=None, metavar="PX",
    help="Pixels a side the vectorizer reads at a time (default 2560, at about 70 bytes per pixel). A blob of touching "
         "buildings whose bounding box holds more pixels is split one window at a time.")
no_split = click.option("--no-split/--split", "no_split", default=False, help="Do not split touching buildings (--split: do, where the run that wrote a PROB did not).")
aoi = click.option("--aoi", default=None, metavar="FILE",
                   help="Run only inside the polygons of FILE (any vector format and CRS): buildings whose inside point "
                        "lies there are kept whole; the probability raster is nodata outside (docs/aoi.md).")
aoi_margin = click.option("--aoi-margin", type=click.FloatRange(min=0), default=50.0, show_default=True,
                          help="Predict this many metres beyond the --aoi, so buildings across its edge come out whole.")
# vectorize reads a raster another run wrote: its defaults come from that run, and it traces rather than predicts
vectorize_threshold = click.option("--threshold", type=click.FloatRange(0, 1), default=None,
                                   help="Probability threshold (0-1); default: that of the geoseg run that wrote PROB, "
                                        "else 0.5.")
vectorize_border_cut = click.option("--border-cut", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
                                    help="Split touching buildings where PROB's border/gap band is at least this (0-1]; "
                                         "lower splits more; default: that of the run that wrote PROB, else 0.5.")
vectorize_aoi = click.option("--aoi", default=None, metavar="FILE",
                             help="Trace only inside the polygons of FILE (any vector format and CRS): buildings whose "
                                  "inside point lies there are kept whole (docs/aoi.md).")
vectorize_aoi_margin = click.option("--aoi-margin", type=click.FloatRange(min=0), default=50.0, show_default=True,
                                    help="Trace this many metres of PROB beyond the --aoi, so buildings across its edge "
                                         "come out whole.")
aoi_clip = click.option("--aoi-clip", is_flag=True, help="Cut footprints at the --aoi's edge instead of keeping them whole.")
runtime = click.option("--runtime", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
                       help="onnx: ONNX Runtime on the CPU in fp32, faster than PyTorch on CPUs without native bf16 "
                            "(needs pip install 'geoseg[onnx]'; the model is exported once into ~/.cache/geoseg).")
progress = click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "lines", "json", "none"]),
                        default="auto", show_default=True,
                        help="Progress on stderr: a bar, plain log lines (auto: a bar on a terminal, lines otherwise), "
                             "json (one object per line, for programs) or none.")


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated band numbers, e.g. 3,2,1", param_hint="--bands") from None


def parse_scales(text: str | None) -> tuple[float, ...]:
    if not text:
        return (1.0,)
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated zoom factors, e.g. 1,0.5", param_hint="--tta-scales") from None


def make_progress(mode: str):
    """The reporter for ``--progress``: ``auto`` is a bar where stderr is a terminal, log lines elsewhere."""
    import sys

    from geoseg.progress import BarProgress, JsonProgress, LineProgress, NullProgress

    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    return {"bar": BarProgress, "lines": LineProgress, "json": JsonProgress, "none": NullProgress}[mode]()


# command-line parameter -> VectorizeConfig field
FOOTPRINT_PARAMS = {"threshold": "threshold", "min_area": "min_area_m2", "min_part": "min_part_m2", "simplify": "simplify_m",
                    "regularize": "regularize", "no_split": "split_touching", "border_cut": "border_cut"}


def given_footprint_fields(ctx) -> set[str]:
    """The VectorizeConfig fields the user set on the command line (or by environment), not left at their default."""
    from click.core import ParameterSource

    given = set()
    for param, field_name in FOOTPRINT_PARAMS.items():
        if ctx.get_parameter_source(param) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given.add(field_name)
    return given


def vectorize_config(threshold, min_area, min_part, simplify, regularize, no_split, border_cut=None, split_window=None):
    window = {} if split_window is None else {"band_rows": max(1, split_window - 2 * VectorizeConfig.halo_rows)}
    return VectorizeConfig(threshold=threshold, min_area_m2=min_area, min_part_m2=min_part, simplify_m=simplify,
                           regularize=regularize, split_touching=not no_split, border_cut=border_cut, **window)
