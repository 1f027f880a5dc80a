"""The CLI end to end: sample tiles, progress, start-up cost, and one-line errors for bad input."""

import json
import os
import shutil
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geoseg.cli.main import cli
from tests.conftest import SAMPLES, scene, write_raster


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_clean_error(result, *needles):
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("geoseg: warning")]
    assert len(lines) == 1 and lines[0].startswith("geoseg: error: "), result.stderr
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_segment_sample_tile_with_the_default_model(tmp_path):
    src = SAMPLES / "banepa_z20_crop_3857.tif"
    r = run("segment", src, "-o", tmp_path / "b.gpkg", "--prob", tmp_path / "p.tif", "--progress", "none")
    assert r.exit_code == 0, r.output
    import geopandas as gpd

    gdf = gpd.read_file(tmp_path / "b.gpkg")
    assert len(gdf) > 0 and gdf.crs.to_epsg() == 3857
    assert list(gdf.columns[:6]) == ["id", "area_m2", "p_mean", "gsd_m", "model", "reg_status"]
    with rasterio.open(src) as a, rasterio.open(tmp_path / "p.tif") as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        # the model ran at 0.3 m in UTM and came back to 0.15 m Web Mercator: masks agree up to edge pixels
        assert ((a.dataset_mask() > 0) == (b.dataset_mask() > 0)).mean() > 0.99
    with rasterio.open(tmp_path / "p.tif") as b:
        assert gdf.total_bounds[0] >= b.bounds.left and gdf.total_bounds[2] <= b.bounds.right
    r2 = run("vectorize", tmp_path / "p.tif", "-o", tmp_path / "v.fgb", "--progress", "none")
    assert r2.exit_code == 0, r2.output
    # vectorizing on the input grid (0.15 m) vs the model grid (0.3 m): same buildings, give or take slivers
    v = gpd.read_file(tmp_path / "v.fgb")
    assert abs(len(v) - len(gdf)) <= max(2, len(gdf) // 5)
    assert (v["area_m2"] >= 10.0).all() and (gdf["area_m2"] >= 10.0).all()  # the default --min-area
    r3 = run("vectorize", tmp_path / "p.tif", "-o", tmp_path / "all.fgb", "--min-area", 4, "--min-part", 0, "--progress", "none")
    assert r3.exit_code == 0, r3.output
    every = gpd.read_file(tmp_path / "all.fgb")
    assert len(every) > len(v) and every["area_m2"].min() < 10.0  # smaller footprints and split pieces kept


def test_vectorize_records_the_threshold_and_cut_it_used_as_json(tmp_path):
    from geoseg.io.vector import read_metadata
    from tests.footprints.test_vectorize_raster import draw, write_prob

    prob = write_prob(tmp_path / "p.tif", draw((60, 100), [(10, 10, 30, 40)]))  # no settings tag: the defaults
    assert run("vectorize", prob, "-o", tmp_path / "v.gpkg", "--progress", "none").exit_code == 0
    used = json.loads(read_metadata(tmp_path / "v.gpkg")["vectorize"])
    assert used["threshold"] == 0.5 and used["border_cut"] == 0.5


def test_progress_json_lines(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((200, 150), [(20, 20, 60, 60)]))
    r = run("segment", src, "-o", tmp_path / "o.fgb", "--model", pixel_card, "--progress", "json")
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stderr.splitlines()]
    predict = [x for x in recs if x["stage"] == "predict"]
    assert predict[-1]["done"] == predict[-1]["total"] > 1
    assert all({"stage", "done", "total", "eta_s"} <= set(x) for x in recs[:-1])
    assert recs[-1]["stage"] == "done" and recs[-1]["footprints"] == 1
    r = run("segment", src, "--prob", tmp_path / "p.tif", "--model", pixel_card, "--progress", "json")
    assert r.exit_code == 0, r.output
    done = json.loads(r.stderr.splitlines()[-1])
    assert done["footprints"] is None and done["prob"] == str(tmp_path / "p.tif"), "--prob alone: no footprints made"
    r = run("segment", src, "--prob", tmp_path / "p2.tif", "--model", pixel_card, "--progress", "none")
    assert r.exit_code == 0 and r.stderr.startswith(f"probabilities -> {tmp_path / 'p2.tif'} ("), r.stderr


def test_plan_is_a_dry_run(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((300, 200)))
    r = run("plan", src, "--model", pixel_card, "--json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["tiles"] == 6 * 4 and plan["work_gsd_m"] == 1.0 and not plan["resampled"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_plan_reports_the_valid_share_and_refuses_an_input_with_none(tmp_path, pixel_card):
    mask = np.zeros((300, 200), bool)
    mask[:75] = True  # a quarter valid
    src = write_raster(tmp_path / "quarter.tif", scene((300, 200)), mask=mask)
    plan = json.loads(run("plan", src, "--model", pixel_card, "--json").stdout)
    assert plan["valid_fraction"] == 0.25
    empty = write_raster(tmp_path / "none.tif", np.zeros((3, 300, 200), np.uint8), nodata=0)
    nan = write_raster(tmp_path / "nan.tif", np.full((3, 300, 200), np.nan, np.float32))
    for path in (empty, nan):
        assert_clean_error(run("plan", path, "--model", pixel_card), "has no valid pixels", "nothing to segment")


def test_plan_on_a_large_raster_samples_it_and_warns_when_the_sample_is_all_nodata(tmp_path, pixel_card):
    data = np.zeros((3, 2100, 2100), np.uint8)
    data[:, 1050, 1050] = 200  # one valid pixel, between the sampled windows (rows and columns 790-1045, 1053-1308): a warning, not a refusal
    src = write_raster(tmp_path / "sparse.tif", data, nodata=0)
    r = run("plan", src, "--model", pixel_card, "--json")
    assert r.exit_code == 0, r.output
    assert "no valid pixel in a sample" in r.stderr and json.loads(r.stdout)["valid_fraction"] == 0.0


def test_plan_refuses_a_dst_crs_that_cannot_hold_the_area(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((300, 200)))  # UTM 33N
    assert_clean_error(run("plan", src, "--model", pixel_card, "--dst-crs", "+proj=ortho +lat_0=-45 +lon_0=-165"),
                       "cannot represent the raster's area")


@pytest.mark.parametrize("command", ["vectorize", "plan"])
def test_an_unknown_dst_crs_is_one_line_in_a_real_process(tmp_path, command):
    """GDAL's own "ERROR 1: PROJ: ... crs not found" went to stderr too (CliRunner does not see it)."""
    from tests.footprints.test_vectorize_raster import draw, write_prob

    src = write_prob(tmp_path / "p.tif", draw((60, 100), [(10, 10, 30, 40)]))
    args = ["-o", tmp_path / "v.gpkg"] if command == "vectorize" else []
    r = subprocess.run(_geoseg(command, src, *args, "--dst-crs", "EPSG:999999"), capture_output=True, text=True,
                       check=False)
    lines = [line for line in r.stderr.splitlines() if not line.startswith("geoseg: warning")]  # plan: 1 band
    assert r.returncode == 2 and len(lines) == 1 and "EPSG:999999" in lines[0], r.stderr


def test_models_list_and_info():
    r = run("models", "list")
    assert r.exit_code == 0 and "scinet-r18-h200 (alias: default)" in r.stdout and "unet-r18-multiscale-c512" in r.stdout
    info = json.loads(run("models", "info", "default").stdout)
    assert info["name"] == "scinet-r18-h200" and len(info["sha256"]) == 64 and info["weights_status"] == "ok"
    card = json.loads((SAMPLES.parent / "models" / "scinet-r18-h200.json").read_text())
    for key in ("border_cut", "throughput_mps", "train_command", "data"):  # what shapes a run, and how it was made
        assert info[key] == card[key]
    assert "weights missing" not in r.stdout


def test_models_info_and_list_say_when_a_cards_weights_are_missing_or_do_not_match(tmp_path, pixel_card, monkeypatch):
    card = json.loads(pixel_card.read_text())
    weights = pixel_card.parent / card["weights"]
    copy = tmp_path / "mine.json"
    copy.write_text(json.dumps({**card, "name": "mine", "weights": str(weights)}))
    assert json.loads(run("models", "info", copy).stdout)["weights_status"] == "ok"
    copy.write_text(json.dumps({**card, "name": "mine", "weights": str(weights), "sha256": "0" * 64}))
    assert "the card says 000000000000" in json.loads(run("models", "info", copy).stdout)["weights_status"]
    copy.write_text(json.dumps({**card, "name": "mine", "weights": str(tmp_path / "gone.safetensors")}))
    assert "not found" in json.loads(run("models", "info", copy).stdout)["weights_status"]
    monkeypatch.setenv("GEOSEG_MODEL_PATH", str(tmp_path))
    listed = [line for line in run("models", "list").stdout.splitlines() if line.startswith("mine:")]
    assert len(listed) == 1 and listed[0].endswith(f"[weights missing: {tmp_path / 'gone.safetensors'}]")


@pytest.mark.parametrize("argv", [["--help"], ["models", "list"], ["models", "export", "--help"], ["plan", str(SAMPLES / "banepa_z20_crop_3857.tif")]])
def test_light_commands_do_not_import_torch(argv):
    code = ("import sys; from geoseg.cli.main import cli\n"
            f"try:\n    cli({argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr


# ---- bad input: one line, exit 2, nothing written -------------------------------------------------


@pytest.fixture
def good(tmp_path):
    return write_raster(tmp_path / "good.tif", scene((100, 100), [(20, 20, 50, 50)]))


def segment_args(src, tmp_path, card, *extra):
    return ["segment", src, "-o", tmp_path / "out" / "b.gpkg", "--prob", tmp_path / "out" / "p.tif",
            "--model", card, "--progress", "none", *extra]


@pytest.fixture
def outdir(tmp_path):
    (tmp_path / "out").mkdir()
    yield tmp_path / "out"
    assert list((tmp_path / "out").iterdir()) == [], "bad input must leave no output behind"


def test_missing_input(tmp_path, pixel_card, outdir):
    assert_clean_error(run(*segment_args(tmp_path / "nope.tif", tmp_path, pixel_card)), "not found")


def test_not_a_raster(tmp_path, pixel_card, outdir):
    p = tmp_path / "x.tif"
    p.write_text("not an image")
    assert_clean_error(run(*segment_args(p, tmp_path, pixel_card)), "not a readable raster")


def test_truncated_geotiff(tmp_path, pixel_card, outdir):
    full = write_raster(tmp_path / "full.tif", scene((512, 512)), tiled=True, blockxsize=128, blockysize=128, compress="deflate")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert_clean_error(run(*segment_args(cut, tmp_path, pixel_card)), "truncated")


def test_no_crs(tmp_path, pixel_card, outdir):
    p = write_raster(tmp_path / "nocrs.tif", scene((50, 50)), crs=None)
    assert_clean_error(run(*segment_args(p, tmp_path, pixel_card)), "no CRS")


def test_a_plain_png_is_one_error_line_without_rasterios_warning(tmp_path):
    import rasterio

    png = tmp_path / "photo.png"
    with rasterio.open(png, "w", driver="PNG", width=64, height=64, count=3, dtype="uint8") as dst:
        dst.write(scene((64, 64)))
    r = run("plan", png)
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert "has no CRS" in r.stderr and "NotGeoreferenced" not in r.stderr


def test_gcps_only_says_to_warp_first(tmp_path, pixel_card, outdir):
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    gcps = [GroundControlPoint(r, c, 500000 + 0.3 * c, 5000000 - 0.3 * r) for r in (0, 50) for c in (0, 50)]
    p = tmp_path / "gcps.tif"
    with rasterio.open(p, "w", driver="GTiff", width=50, height=50, count=3, dtype="uint8") as ds:
        ds.gcps = (gcps, CRS.from_epsg(32633))
        ds.write(scene((50, 50)))
    assert_clean_error(run(*segment_args(p, tmp_path, pixel_card)), "ground control points only", "gdalwarp")


def test_a_paletted_raster_says_to_expand_it_to_rgb(tmp_path, pixel_card, outdir):
    from affine import Affine

    p = tmp_path / "pal.tif"
    with rasterio.open(p, "w", driver="GTiff", width=40, height=40, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=Affine(0.3, 0, 500000, 0, -0.3, 5000000), photometric="palette") as ds:
        ds.write(np.zeros((1, 40, 40), np.uint8))
        ds.write_colormap(1, {0: (200, 30, 30, 255), 1: (0, 0, 0, 255)})
    assert_clean_error(run(*segment_args(p, tmp_path, pixel_card)), "colour-table", "-expand rgb")


def test_all_nodata(tmp_path, pixel_card, outdir):
    p = write_raster(tmp_path / "nd.tif", scene((80, 80)), mask=np.zeros((80, 80), bool))
    assert_clean_error(run(*segment_args(p, tmp_path, pixel_card)), "no valid pixels")


def test_wrong_band_count(tmp_path, pixel_card, outdir):
    p = write_raster(tmp_path / "two.tif", scene((50, 50))[:2])
    assert_clean_error(run(*segment_args(p, tmp_path, pixel_card)), "2 data bands but the model needs 3; give a raster with 3 bands")


def test_unknown_model_lists_valid_names(tmp_path, good, outdir):
    assert_clean_error(run(*segment_args(good, tmp_path, "nonexistent")), "valid names", "default")


def test_weights_failing_their_sha256(tmp_path, good, pixel_card, outdir):
    bad = tmp_path / "badmodel"
    shutil.copytree(pixel_card.parent, bad)
    w = bad / "pixel-test.safetensors"
    w.write_bytes(w.read_bytes()[:-2] + b"xx")
    assert_clean_error(run(*segment_args(good, tmp_path, bad / "pixel-test.json")), "sha256")


def test_gsd_outside_the_valid_range(tmp_path, good, pixel_card, outdir):
    assert_clean_error(run(*segment_args(good, tmp_path, pixel_card, "--gsd", "50")), "valid range")


def test_raster_far_coarser_than_the_model(tmp_path, pixel_card, outdir):
    from affine import Affine

    p = write_raster(tmp_path / "coarse.tif", scene((50, 50)), transform=Affine(30, 0, 500000, 0, -30, 5000000))
    assert_clean_error(run(*segment_args(p, tmp_path, pixel_card)), "coarser")


def test_coarser_than_the_valid_range_warns_but_runs(tmp_path, pixel_card):
    from affine import Affine

    p = write_raster(tmp_path / "coarse.tif", scene((40, 40), [(5, 5, 25, 25)]), transform=Affine(6, 0, 500000, 0, -6, 5000000))
    r = run("segment", p, "-o", tmp_path / "o.gpkg", "--model", pixel_card, "--progress", "none")
    assert r.exit_code == 0 and "geoseg: warning:" in r.stderr and "coarser than" in r.stderr and "valid range" in r.stderr


def test_a_raster_at_the_edge_of_the_valid_range_does_not_warn(tmp_path, pixel_card):
    """4 m UTM pixels measure 4.0016 m on the ground at the central meridian (scale 0.9996): that is the model's
    upper limit (4 m), not beyond it."""
    from affine import Affine

    p = write_raster(tmp_path / "edge.tif", scene((40, 40), [(5, 5, 25, 25)]), transform=Affine(4, 0, 500000, 0, -4, 5000000))
    r = run("segment", p, "-o", tmp_path / "o.gpkg", "--model", pixel_card, "--progress", "none")
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr


def test_finer_than_the_valid_range_is_averaged_down_without_a_warning(tmp_path, pixel_card):
    """Drone imagery finer than the model's range loses nothing when averaged down to the model's GSD."""
    from affine import Affine

    p = write_raster(tmp_path / "fine.tif", scene((200, 200), [(20, 20, 120, 120)]), transform=Affine(0.1, 0, 500000, 0, -0.1, 5000000))
    r = run("segment", p, "-o", tmp_path / "o.gpkg", "--model", pixel_card, "--progress", "none")
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
    import geopandas as gpd

    assert len(gpd.read_file(tmp_path / "o.gpkg")) == 1


def test_an_rgba_ortho_in_web_mercator_segments_and_its_transparent_part_is_no_data(tmp_path, pixel_card):
    """Drone orthos often come as RGBA in EPSG:3857: the reader warps them and the alpha band is the mask."""
    import geopandas as gpd
    from affine import Affine

    img = scene((120, 120), [(20, 20, 50, 50), (20, 80, 50, 110)])
    alpha = np.full((1, 120, 120), 255, np.uint8)
    alpha[:, :, 65:] = 0  # the second building lies where the ortho is transparent
    p = write_raster(tmp_path / "rgba.tif", np.concatenate([img, alpha]), crs="EPSG:3857",
                     transform=Affine(1.0, 0, 1_000_000, 0, -1.0, 3_000_000), photometric="RGB", alpha="YES")
    r = run("segment", p, "-o", tmp_path / "o.gpkg", "--prob", tmp_path / "p.tif", "--model", pixel_card,
            "--progress", "none")
    assert r.exit_code == 0, r.output
    assert len(gpd.read_file(tmp_path / "o.gpkg")) == 1
    with rasterio.open(tmp_path / "p.tif") as ds:
        valid = ds.dataset_mask() > 0
    assert 0.4 < valid.mean() < 0.65 and not valid[:, -10:].any()


def test_unwritable_output_folder(tmp_path, good, pixel_card):
    r = run("segment", good, "-o", tmp_path / "missing" / "b.gpkg", "--model", pixel_card)
    assert_clean_error(r, "does not exist")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        assert_clean_error(run("segment", good, "-o", ro / "b.gpkg", "--model", pixel_card), "not writable")
    finally:
        ro.chmod(0o700)


def test_unknown_output_extension(tmp_path, good, pixel_card, outdir):
    r = run("segment", good, "-o", outdir / "b.xyz", "--model", pixel_card)
    assert_clean_error(r, ".gpkg", ".parquet")
    assert_clean_error(run("segment", good, "--prob", outdir / "p.png", "--model", pixel_card), ".tif")


def test_no_output_requested_is_a_usage_error(good, pixel_card):
    r = run("segment", good, "--model", pixel_card)
    assert r.exit_code == 2 and "--output" in r.output


# ---- killed runs --------------------------------------------------------------------------------


def _geoseg(*args):
    return [sys.executable, "-m", "geoseg.cli.main", *map(str, args)]


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_to_the_same_result(tmp_path, sig):
    """A real kill mid-run (default model, real tiles), then the same command finishes the job."""
    import signal
    import time

    from affine import Affine

    tile = rasterio.open(SAMPLES / "banepa_z20_crop_3857.tif").read()
    src = write_raster(tmp_path / "in.tif", np.concatenate([tile[:, :, :600]] * 3, axis=1)[:, :1000],
                       crs="EPSG:32645", transform=Affine(0.3, 0, 336000, 0, -0.3, 3057000))
    args = ["segment", src, "-o", tmp_path / "o.gpkg", "--prob", tmp_path / "o.tif", "--tile-size", "256", "--overlap", "32", "--progress", "none"]
    ref = subprocess.run(_geoseg("segment", src, "-o", tmp_path / "ref.gpkg", "--prob", tmp_path / "ref.tif",
                                 "--tile-size", "256", "--overlap", "32", "--progress", "none"), capture_output=True, text=True, check=False)
    assert ref.returncode == 0, ref.stderr
    work = tmp_path / ".o.gpkg.geoseg-work"
    proc = subprocess.Popen(_geoseg(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(work.glob("chunk_*.tif"))) < 1 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, "the run finished before it could be killed"
    assert not (tmp_path / "o.gpkg").exists() and not (tmp_path / "o.tif").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name], "temporary outputs left behind"
    done = len(list(work.glob("chunk_*.tif")))
    assert done >= 1
    if sig == "SIGTERM":  # the message counts what the rerun below will reuse
        import re

        said = re.fullmatch(r"geoseg: terminated; rerun the same command to resume from the (\d+) of (\d+) finished "
                            r"parts \(rows of tiles\)", err.strip().splitlines()[-1])
        assert proc.returncode == 143 and said and int(said[1]) == done < int(said[2]) and "Traceback" not in err
    again = subprocess.run(_geoseg(*args), capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert f"resumed {done} finished rows" in again.stderr
    with rasterio.open(tmp_path / "ref.tif") as a, rasterio.open(tmp_path / "o.tif") as b:
        assert np.array_equal(a.read(), b.read())
    import geopandas as gpd

    ref_g, got_g = gpd.read_file(tmp_path / "ref.gpkg"), gpd.read_file(tmp_path / "o.gpkg")
    assert len(ref_g) == len(got_g) and ref_g.geometry.union_all().symmetric_difference(got_g.geometry.union_all()).area < 1e-6


def test_gsd_native_runs_where_the_input_is_within_the_valid_range(tmp_path, pixel_card):
    from affine import Affine

    half = write_raster(tmp_path / "half.tif", scene((100, 100)), transform=Affine(0.5, 0, 500000, 0, -0.5, 5000000))
    plan = json.loads(run("plan", half, "--model", pixel_card, "--gsd", "native", "--json").stdout)
    assert plan["work_gsd_m"] == pytest.approx(0.5, rel=1e-3) and not plan["resampled"]
    fine = write_raster(tmp_path / "fine.tif", scene((100, 100)), transform=Affine(0.1, 0, 500000, 0, -0.1, 5000000))
    r = run("plan", fine, "--model", pixel_card, "--gsd", "native", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["work_gsd_m"] == 0.25 and "running at 0.25 m" in r.stderr
    bad = run("plan", half, "--model", pixel_card, "--gsd", "fast")
    assert bad.exit_code == 2 and "neither metres (e.g. 0.3) nor 'native'" in bad.stderr and "Traceback" not in bad.output


def test_a_closed_pipe_ends_quietly():
    """`geoseg ... | head` closes stdout early: no 'internal error', the shell's SIGPIPE status."""
    proc = subprocess.Popen(_geoseg("models", "info", "default"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the interpreter has started, so its first write hits a closed pipe
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "error" not in err and "Traceback" not in err


@pytest.mark.parametrize("flag,value", [("--border-cut", "0"), ("--border-cut", "1.5"), ("--border-cut", "-0.1"),
                                        ("--threshold", "-0.1"), ("--threshold", "1.5")])
def test_a_probability_option_outside_0_1_is_a_usage_error(tmp_path, flag, value):
    src = write_raster(tmp_path / "p.tif", np.zeros((1, 8, 8), np.uint8))
    r = run("vectorize", src, "-o", tmp_path / "b.gpkg", flag, value)
    assert r.exit_code == 2 and flag in r.output and "Traceback" not in r.output
    assert not (tmp_path / "b.gpkg").exists()


def test_a_batch_size_under_one_is_a_usage_error(tmp_path):
    src = write_raster(tmp_path / "in.tif", scene((64, 64)))
    r = run("segment", src, "-o", tmp_path / "b.gpkg", "--batch-size", "0")
    assert r.exit_code == 2 and "--batch-size" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "b.gpkg").exists()


def test_vectorizing_imagery_instead_of_probabilities_is_a_one_line_error(tmp_path):
    src = write_raster(tmp_path / "rgb.tif", scene((64, 64), [(10, 10, 40, 40)]))  # bright roofs: band 1 > 0.5
    r = run("vectorize", src, "-o", tmp_path / "b.gpkg", "--progress", "none")
    assert_clean_error(r, "looks like imagery", "geoseg segment")
    assert not (tmp_path / "b.gpkg").exists()


@pytest.mark.parametrize("flag", ["--min-area", "--min-part", "--simplify"])
def test_negative_sizes_are_usage_errors(tmp_path, flag):
    src = write_raster(tmp_path / "p.tif", np.zeros((1, 8, 8), np.uint8))
    r = run("vectorize", src, "-o", tmp_path / "b.gpkg", flag, "-1")
    assert r.exit_code == 2 and "x>=0" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "b.gpkg").exists()


def test_an_unknown_dst_crs_is_one_line_on_the_real_stderr(tmp_path):
    """GDAL/PROJ print straight to the process's stderr, which CliRunner does not see: run the real command."""
    src = write_raster(tmp_path / "in.tif", scene((32, 32)))
    proc = subprocess.run(_geoseg("segment", str(src), "-o", str(tmp_path / "b.gpkg"), "--dst-crs", "EPSG:99999",
                                  "--progress", "none"), check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ["geoseg: error: --dst-crs 'EPSG:99999' is not a CRS; use e.g. EPSG:32633"]


def _aoi_file(path, geom):
    import geopandas as gpd

    gpd.GeoDataFrame(geometry=[geom], crs="EPSG:32633").to_file(path)
    return path


def test_plan_and_segment_take_an_aoi(tmp_path, pixel_card):
    from shapely.geometry import box

    src = write_raster(tmp_path / "in.tif", scene((300, 200), [(20, 20, 50, 50), (200, 150, 240, 190)]))
    aoi = _aoi_file(tmp_path / "aoi.gpkg", box(500000, 4999900, 500100, 5000000))  # rows 0..100, cols 0..100
    r = run("plan", src, "--model", pixel_card, "--json", "--aoi", aoi, "--aoi-margin", "10")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["aoi_area_m2"] == 100 * 100 and plan["tiles"] == 3 * 3 < 6 * 4  # tiles of 64 every 48 px
    r = run("segment", src, "-o", tmp_path / "b.geojson", "--model", pixel_card, "--aoi", aoi, "--progress", "none")
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("1 buildings")


@pytest.mark.parametrize("where, needle", [("missing", "aoi not found"), ("off", "no polygon of the aoi")])
def test_a_bad_aoi_is_a_one_line_error(tmp_path, good, pixel_card, outdir, where, needle):
    from shapely.geometry import box

    aoi = tmp_path / "nope.gpkg" if where == "missing" else _aoi_file(tmp_path / "off.gpkg", box(0, 0, 10, 10))
    assert_clean_error(run(*segment_args(good, tmp_path, pixel_card, "--aoi", aoi)), needle)


def test_an_aoi_that_is_also_the_output_is_refused(tmp_path, good, pixel_card):
    from shapely.geometry import box

    aoi = _aoi_file(tmp_path / "area.gpkg", box(500000, 4999900, 500100, 5000000))
    before = aoi.read_bytes()
    assert_clean_error(run("segment", good, "-o", aoi, "--model", pixel_card, "--aoi", aoi, "--progress", "none"),
                       "would replace that file")
    assert aoi.read_bytes() == before


def test_no_output_may_replace_an_input_or_another_output(tmp_path, good, pixel_card):
    """`--prob in.tif` once overwrote the imagery and `--matches truth.geojson` the reference."""
    from shapely.geometry import box

    before = good.read_bytes()
    for args in (("--prob", good), ("-o", tmp_path / "b.gpkg", "--prob", good), ("-o", tmp_path / "x.tif", "--prob", tmp_path / "x.tif")):
        assert_clean_error(run("segment", good, *args, "--model", pixel_card, "--progress", "none"), "would replace that file")
    assert good.read_bytes() == before and not (tmp_path / "b.gpkg").exists()
    truth = tmp_path / "t.geojson"
    gpd.GeoDataFrame(geometry=[box(500000, 4999900, 500100, 5000000)], crs=32633).to_file(truth)
    truth_before = truth.read_bytes()
    assert run("segment", good, "-o", tmp_path / "p.gpkg", "--prob", tmp_path / "p.tif", "--model", pixel_card,
               "--progress", "none").exit_code == 0
    for pred, matches in ((tmp_path / "p.gpkg", truth), (tmp_path / "p.gpkg", tmp_path / "p.gpkg")):
        assert_clean_error(run("evaluate", pred, "--truth", truth, "--matches", matches), "would replace that file")
    assert truth.read_bytes() == truth_before


@pytest.mark.parametrize("kind", ["masked", "nan"])
def test_a_probability_raster_without_valid_pixels_is_a_one_line_error_not_an_empty_layer(tmp_path, kind):
    if kind == "masked":
        prob = write_raster(tmp_path / "p.tif", np.full((64, 64), 240, np.uint8), mask=np.zeros((64, 64), bool))
    else:
        prob = write_raster(tmp_path / "p.tif", np.full((64, 64), np.nan, np.float32))
    assert_clean_error(run("vectorize", prob, "-o", tmp_path / "b.gpkg", "--progress", "none"), "has no valid pixels")
    assert not (tmp_path / "b.gpkg").exists()
    gpd.GeoDataFrame(geometry=[], crs=32633).to_file(tmp_path / "t.gpkg")
    assert_clean_error(run("evaluate", prob, "--truth", tmp_path / "t.gpkg"), "has no valid pixels")


def test_a_truncated_probability_raster_is_called_corrupt(tmp_path):
    prob = write_raster(tmp_path / "p.tif", np.random.default_rng(0).integers(0, 255, (512, 512), dtype=np.uint8),
                        compress="deflate")
    data = prob.read_bytes()
    prob.write_bytes(data[: len(data) * 2 // 3])
    assert_clean_error(run("vectorize", prob, "-o", tmp_path / "b.gpkg", "--progress", "none"), "corrupt or truncated")
    assert not (tmp_path / "b.gpkg").exists()


@pytest.mark.parametrize("side", ["0", "100"])
def test_a_tile_size_that_is_not_a_positive_multiple_of_32_is_refused(tmp_path, good, pixel_card, side):
    (tmp_path / "out").mkdir()
    assert_clean_error(run(*segment_args(good, tmp_path, pixel_card, "--tile-size", side)), "positive multiple of 32")


def test_a_negative_aoi_margin_is_a_usage_error(tmp_path, good, pixel_card):
    assert run(*segment_args(good, tmp_path, pixel_card, "--aoi-margin", "-1")).exit_code == 2


def test_vectorize_takes_an_aoi_and_refuses_a_bad_one(tmp_path, pixel_card):
    from shapely.geometry import box

    src = write_raster(tmp_path / "in.tif", scene((300, 200), [(20, 20, 50, 50), (200, 150, 240, 190)]))
    r = run("segment", src, "-o", tmp_path / "all.geojson", "--prob", tmp_path / "p.tif", "--model", pixel_card,
            "--progress", "none")
    assert r.exit_code == 0 and r.stderr.startswith("2 buildings"), r.output
    aoi = _aoi_file(tmp_path / "aoi.gpkg", box(500000, 4999900, 500100, 5000000))  # holds only the first building
    r = run("vectorize", tmp_path / "p.tif", "-o", tmp_path / "v.fgb", "--aoi", aoi, "--progress", "none")
    assert r.exit_code == 0 and r.stderr.startswith("1 buildings"), r.output
    import pyogrio

    assert pyogrio.read_info(tmp_path / "v.fgb")["features"] == 1
    before = aoi.read_bytes()
    assert_clean_error(run("vectorize", tmp_path / "p.tif", "-o", aoi, "--aoi", aoi, "--progress", "none"), "would replace that file")
    assert aoi.read_bytes() == before
    assert_clean_error(run("vectorize", tmp_path / "p.tif", "-o", tmp_path / "w.fgb", "--aoi", tmp_path / "nope.gpkg"),
                       "aoi not found")
    assert not (tmp_path / "w.fgb").exists()


@pytest.mark.parametrize("args, needle", [
    (("segment", "in.tif", "--gsd", "abc"), "'--gsd'"),
    (("segmnt",), "No such command 'segmnt'"),
    (("train", "missing.toml"), "does not exist"),
    (("evaluate", "p.gpkg", "--truth", "t.gpkg", "--plot", "x.png"), "--gsd-sweep runs only"),
])
def test_usage_errors_from_the_executable_are_one_line_with_where_to_find_help(tmp_path, args, needle):
    proc = subprocess.run(_geoseg(*args), capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--help'" in proc.stderr, proc.stderr
    bare = subprocess.run(_geoseg(), capture_output=True, text=True, timeout=120, check=False)
    assert bare.returncode == 2 and bare.stderr.startswith("Usage: geoseg"), "no arguments: the help, not an error"


def test_a_blob_of_touching_roofs_larger_than_the_split_window_is_split_window_by_window(tmp_path):
    """A 900 x 900 px block of touching 30 px roofs with predicted walls: with a 768 px window it is split one window
    at a time (it was kept whole, one footprint), into the roofs the default window (2560 px, all of it) gives."""
    prob = np.zeros((2, 1000, 1000), np.uint8)
    prob[0, 50:950, 50:950] = 230
    prob[1, 50:950:30, 50:950] = prob[1, 50:950, 50:950:30] = 255  # the walls between roofs
    path = tmp_path / "p.tif"
    write_raster(path, prob)
    with rasterio.open(path, "r+") as ds:
        ds.set_band_description(1, "building")
        ds.set_band_description(2, "border")
    for name, extra in (("small", ["--split-window", 768]), ("default", [])):
        r = run("vectorize", path, "-o", tmp_path / f"{name}.gpkg", *extra, "--progress", "none")
        assert r.exit_code == 0 and "warning" not in r.stderr, r.output
    small, default = (gpd.read_file(tmp_path / f"{n}.gpkg") for n in ("small", "default"))
    assert len(small) == len(default) == 900  # 30 x 30 roofs
    assert small.area_m2.sum() == pytest.approx(default.area_m2.sum(), rel=1e-3)
