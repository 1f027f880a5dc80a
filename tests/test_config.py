"""geoseg.config: run configurations refuse values that make no sense, with one-line errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from geoseg.config import SegmentConfig, VectorizeConfig
from geoseg.errors import ConfigError, GeosegError


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and isinstance(exc_info.value, GeosegError) and isinstance(exc_info.value, ValueError)
    return msg


@pytest.mark.parametrize("field", ["threshold", "regularize_min_iou"])
@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan")])
def test_probabilities_outside_0_1_are_config_errors(field, value):
    with pytest.raises(ConfigError, match="from 0 to 1"):
        VectorizeConfig(**{field: value})


@pytest.mark.parametrize("value", [0, 0.0, -0.01, 1.01, float("nan")])
def test_a_border_cut_must_be_above_0_and_at_most_1_as_the_cli_says(value):
    """The CLI's --border-cut is (0, 1]; a cut of 0 reached the vectorizer and failed there, after the model ran."""
    with pytest.raises(ConfigError, match=r"--border-cut must be a probability above 0") as err:
        VectorizeConfig(border_cut=value)
    assert "at most 1" in one_line(err)


@pytest.mark.parametrize("field", ["min_area_m2", "min_part_m2", "simplify_m"])
def test_negative_sizes_are_config_errors(field):
    with pytest.raises(ConfigError, match="0 or more"):
        VectorizeConfig(**{field: -1.0})


@pytest.mark.parametrize("field,flag", [("min_area_m2", "--min-area"), ("min_part_m2", "--min-part"), ("simplify_m", "--simplify")])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1", True])
def test_sizes_that_are_not_finite_numbers_say_so_naming_the_option(field, flag, value):
    """`--simplify nan` said "simplify_m nan is negative": the internal name and the wrong reason."""
    with pytest.raises(ConfigError) as err:
        VectorizeConfig(**{field: value})
    msg = one_line(err)
    assert msg.startswith(f"{flag} ({field}) must be a number >= 0, not ") and "is negative" not in msg


def test_the_edges_and_the_defaults_are_accepted():
    assert VectorizeConfig(threshold=0.0, border_cut=1.0, min_area_m2=0.0, simplify_m=0.0).threshold == 0.0
    assert VectorizeConfig().threshold is None
    assert SegmentConfig(aoi_margin_m=0, gsd_m="native", tile_size=512, overlap=0, batch_size=1).overlap == 0


def test_a_config_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        VectorizeConfig(threshold=2)


@pytest.mark.parametrize("kwargs,needle", [
    ({"gsd_m": "0.3"}, "--gsd (gsd_m) must be metres (a number > 0) or 'native', not '0.3'"),
    ({"gsd_m": "Native"}, "--gsd (gsd_m) must be metres"),
    ({"gsd_m": -1}, "--gsd (gsd_m) must be metres"),
    ({"gsd_m": 0}, "--gsd (gsd_m) must be metres"),
    ({"gsd_m": float("nan")}, "--gsd (gsd_m) must be metres"),
    ({"gsd_m": float("inf")}, "--gsd (gsd_m) must be metres"),
    ({"gsd_m": [0.3]}, "--gsd (gsd_m) must be metres"),
    ({"tile_size": "512"}, "--tile-size must be a whole number, not '512'"),
    ({"tile_size": 512.0}, "--tile-size must be a whole number"),
    ({"tile_size": True}, "--tile-size must be a whole number"),
    ({"overlap": -1}, "--overlap must be a whole number >= 0"),
    ({"overlap": "64"}, "--overlap must be a whole number >= 0"),
    ({"batch_size": 0}, "--batch-size must be a whole number >= 1, not 0"),
    ({"batch_size": 2.5}, "--batch-size must be a whole number >= 1"),
    ({"bands": "3,2,1"}, "--bands must be band numbers from 1 up"),
    ({"bands": (0, 1, 2)}, "--bands must be band numbers from 1 up"),
    ({"bands": ()}, "--bands must be band numbers from 1 up"),
    ({"bands": (1.0, 2.0, 3.0)}, "--bands must be band numbers from 1 up"),
    ({"tta_scales": 0.5}, "--tta-scales must be a sequence of zoom factors, not 0.5"),
    ({"tta_scales": "1,0.5"}, "--tta-scales must be a sequence of zoom factors"),
    ({"tta_scales": (1, "0.5")}, "--tta-scales must be a sequence of zoom factors"),
    ({"tta_scales": (1, 0)}, "test-time scale 0 is outside"),
    ({"tta": "rot"}, "--tta must be one of none, flip, d4, not 'rot'"),
    ({"blend": "foo"}, "--blend must be one of cosine, gaussian, crop, not 'foo'"),
    ({"compress": "lzw"}, "--compress must be one of deflate, zstd, not 'lzw'"),
    ({"device": "gpu"}, "--device must be one of auto, cpu, cuda, not 'gpu'"),
    ({"precision": "fp8"}, "--precision must be one of auto, fp32, bf16, fp16, not 'fp8'"),
    ({"block_width": 0}, "block_width must be a whole number >= 1"),
    ({"aoi_margin_m": -1}, "--aoi-margin (aoi_margin_m) must be a number >= 0, not -1; give 0 or more metres"),
    ({"aoi_margin_m": float("nan")}, "--aoi-margin (aoi_margin_m) must be a number >= 0"),
    ({"aoi": 5}, "--aoi must be the path of a polygon file"),
    ({"model": 5}, "--model must be a model name or a model card path"),
    ({"model": ""}, "--model must be a model name or a model card path"),
    ({"vectorize": {"threshold": 0.5}}, "vectorize must be a VectorizeConfig"),
])
def test_segment_options_of_the_wrong_type_or_out_of_range_are_one_line_config_errors(kwargs, needle):
    """The Python API used to pass these on (TypeError deep in planning, a ValueError from blending after the model
    loaded, batch_size=0 accepted): now refused on construction, named as the CLI names them."""
    with pytest.raises(ConfigError) as err:
        SegmentConfig(**kwargs)
    assert needle in one_line(err)


@pytest.mark.parametrize("kwargs,needle", [
    ({"threshold": "0.5"}, "--threshold must be a probability, not '0.5'"),
    ({"threshold": "abc"}, "--threshold must be a probability"),
    ({"band_rows": 0}, "band_rows must be a whole number >= 1"),
    ({"halo_rows": -1}, "halo_rows must be a whole number >= 0"),
    ({"halo_rows": 2.0}, "halo_rows must be a whole number >= 0"),
    ({"boundary_band": 0}, "boundary_band must be a whole number >= 1"),
    ({"boundary_band": "2"}, "boundary_band must be a band number or a tuple of them"),
    ({"boundary_band": (2, 0)}, "boundary_band must be a band number or a tuple of them"),
])
def test_vectorize_options_of_the_wrong_type_are_one_line_config_errors(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        VectorizeConfig(**kwargs)
    assert needle in one_line(err)


def test_what_the_cli_and_callers_legitimately_pass_is_accepted_and_made_plain():
    """Lists for tuples and numpy numbers are fine; they are stored as tuples and Python numbers, so a config
    hashes, compares and goes into the outputs' JSON settings tag (json.dumps refuses numpy integers)."""
    cfg = SegmentConfig(bands=[3, 2, 1], tta_scales=np.array([1.0, 0.5]), gsd_m=np.float32(0.25), tile_size=np.int64(256),
                        overlap=np.int32(32), batch_size=np.uint8(4), block_width=np.int64(1024), aoi_margin_m=np.int64(10),
                        vectorize=VectorizeConfig(threshold=np.float32(0.5), min_area_m2=np.int64(4), boundary_band=[2, 3],
                                                  simplify_m=None, band_rows=np.int64(512)))
    assert cfg.bands == (3, 2, 1) and cfg.tta_scales == (1.0, 0.5) and cfg.vectorize.boundary_band == (2, 3)
    assert type(cfg.tile_size) is int and type(cfg.batch_size) is int and type(cfg.gsd_m) is float
    assert type(cfg.vectorize.threshold) is float and type(cfg.vectorize.band_rows) is int
    assert cfg == SegmentConfig(**cfg.to_dict() | {"vectorize": cfg.vectorize}) and hash(cfg)
    assert json.loads(json.dumps(cfg.to_dict()))["bands"] == [3, 2, 1]
    assert SegmentConfig(tta_scales=[1, 0.5]).tta_scales == (1.0, 0.5)
    assert SegmentConfig(tta_scales=()).tta_scales == ()
    assert VectorizeConfig(boundary_band=2).boundary_band == 2
    assert math.isclose(SegmentConfig(gsd_m=1).gsd_m, 1.0)


def test_paths_and_crs_objects_become_text():
    from pathlib import Path

    from rasterio.crs import CRS

    cfg = SegmentConfig(model=Path("models/x.json"), aoi=Path("aoi.gpkg"), dst_crs=CRS.from_epsg(4326))
    assert (cfg.model, cfg.aoi, cfg.dst_crs) == ("models/x.json", "aoi.gpkg", "EPSG:4326")
    json.dumps(cfg.to_dict())


def test_replace_checks_again():
    cfg = SegmentConfig()
    with pytest.raises(ConfigError, match="--batch-size"):
        replace(cfg, batch_size=0)
    with pytest.raises(ConfigError, match="--threshold"):
        replace(cfg.vectorize, threshold=1.5)


@pytest.mark.parametrize("options,needle", [
    ({"gsd_m": "0.3"}, "--gsd (gsd_m)"), ({"threshold": "0.5"}, "--threshold"), ({"tile_size": "512"}, "--tile-size"),
    ({"bands": "3,2,1"}, "--bands"), ({"tta_scales": 0.5}, "--tta-scales"), ({"blend": "foo"}, "--blend"),
    ({"min_area_m2": float("nan")}, "--min-area (min_area_m2)"),
])
def test_the_python_api_refuses_bad_options_before_reading_anything(options, needle):
    """geoseg.plan/segment build their config first: a bad option fails before the input (here missing) is opened."""
    import geoseg

    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        geoseg.plan("/nonexistent/in.tif", **options)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        geoseg.segment("/nonexistent/in.tif", output="/nonexistent/o.gpkg", **options)


@pytest.mark.parametrize("args,needle", [
    (["--simplify", "nan"], "--simplify (simplify_m) must be a number >= 0, not nan"),
    (["--min-area", "nan"], "--min-area (min_area_m2) must be a number >= 0, not nan"),
    (["--aoi-margin", "nan"], "--aoi-margin (aoi_margin_m) must be a number >= 0, not nan"),
    (["--threshold", "nan"], "--threshold must be a probability, not nan"),
    (["--gsd", "nan"], "--gsd (gsd_m) must be metres"),
])
def test_the_cli_reports_nan_as_a_one_line_error_with_exit_2(tmp_path, args, needle):
    """click's FloatRange lets nan through; the config refuses it before the input is read."""
    from geoseg.cli.main import cli

    r = CliRunner().invoke(cli, ["segment", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "o.gpkg"), *args,
                                 "--progress", "none"])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geoseg: error: ") and needle in lines[0], r.stderr
    assert "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []
