"""--progress json: every line on stderr is one JSON object (progress, warnings, errors, the end), for programs such
as the QGIS plugin that drive the CLI."""

from __future__ import annotations

import json
import signal

import numpy as np
from affine import Affine
from click.testing import CliRunner

from geoseg.cli.main import cli
from tests.conftest import scene, write_raster

UTM = Affine(0.5, 0, 500000, 0, -0.5, 5000000)


def _events(result) -> list[dict]:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # fails on any line that is not JSON


def _prob(tmp_path, high=255):
    mask = scene((64, 64), [(10, 10, 40, 40)])[:1] > 100
    return write_raster(tmp_path / "p.tif", mask.astype(np.uint8) * high, transform=UTM)


def test_vectorize_ends_with_a_done_event_and_its_warnings_are_events(tmp_path):
    r = CliRunner().invoke(cli, ["vectorize", str(_prob(tmp_path, high=1)), "-o", str(tmp_path / "b.gpkg"),
                                 "--progress", "json"])
    assert r.exit_code == 0, r.output
    events = _events(r)
    warnings = [e for e in events if e["stage"] == "warning"]
    assert warnings and "values reach only 1 of 255" in warnings[0]["message"]
    assert events[-1] == {"stage": "done", "footprints": 0, "output": str(tmp_path / "b.gpkg")}
    assert any(e["stage"] != "done" and "done" in e for e in events), "progress events too"


def test_an_error_is_a_json_event_with_the_exit_code(tmp_path):
    r = CliRunner().invoke(cli, ["vectorize", str(tmp_path / "none.tif"), "-o", str(tmp_path / "b.gpkg"),
                                 "--progress", "json"])
    assert r.exit_code == 2
    (event,) = _events(r)
    assert event["stage"] == "error" and event["exit_code"] == 2 and "none.tif" in event["message"]
    r = CliRunner().invoke(cli, ["vectorize", str(tmp_path / "none.tif"), "-o", str(tmp_path / "b.gpkg")])
    assert r.stderr.startswith("geoseg: error: ") and r.exit_code == 2  # without json: the one line as before


def test_segment_and_evaluate_write_only_json_on_stderr(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((96, 96), [(20, 20, 60, 70)]), transform=Affine(1, 0, 500000, 0, -1, 5000000))
    r = CliRunner().invoke(cli, ["segment", str(src), "-o", str(tmp_path / "b.gpkg"), "-m", str(pixel_card),
                                 "--progress", "json"])
    assert r.exit_code == 0, r.output
    events = _events(r)
    assert events[-1]["stage"] == "done" and events[-1]["footprints"] == 1
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "b.gpkg"), "--truth", str(tmp_path / "b.gpkg"),
                                 "--raster", str(src), "--json", "--progress", "json"])
    assert r.exit_code == 0, r.output
    assert _events(r)[-1]["stage"] == "done" and json.loads(r.stdout)["iou"] == 1.0


def test_the_callers_signal_handlers_are_back_after_a_command(tmp_path):
    """The SIGTERM handler stayed installed: a cancel just after the end raised inside torch's exit callbacks."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    CliRunner().invoke(cli, ["vectorize", str(_prob(tmp_path)), "-o", str(tmp_path / "b.gpkg"), "--progress", "none"])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_terminated_segment_ends_with_a_cancelled_event_and_leaves_no_output(tmp_path):
    """What the QGIS plugin's cancel does: SIGTERM to a real ``geoseg segment --progress json`` mid-predict. The
    last line says it was cancelled (exit code 143, what a rerun resumes); every line is JSON; no output exists."""
    import subprocess
    import sys
    from pathlib import Path

    import rasterio

    sample = Path(__file__).resolve().parents[2] / "sample_tiles" / "banepa_z20_crop_3857.tif"
    tile = rasterio.open(sample).read()
    src = write_raster(tmp_path / "in.tif", np.concatenate([tile[:, :, :600]] * 3, axis=1)[:, :1000],
                       crs="EPSG:32645", transform=Affine(0.3, 0, 336000, 0, -0.3, 3057000))
    cmd = [sys.executable, "-m", "geoseg.cli.main", "segment", str(src), "-o", str(tmp_path / "o.gpkg"), "--prob",
           str(tmp_path / "o.tif"), "--tile-size", "256", "--overlap", "32", "--progress", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # each event as it comes, as a driving program reads them
        lines.append(line)
        event = json.loads(line)
        if event["stage"] == "predict" and event["done"] >= 1:
            proc.send_signal(signal.SIGTERM)
            break
    lines += proc.stderr.readlines()
    assert proc.wait(timeout=60) == 143, "".join(lines)
    events = [json.loads(line) for line in lines if line.strip()]
    assert events[0]["stage"] == "load model" and events[-1]["stage"] == "cancelled"
    assert events[-1]["exit_code"] == 143 and "rerun the same command to resume" in events[-1]["message"]
    assert not (tmp_path / "o.gpkg").exists() and not (tmp_path / "o.tif").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name], "temporary outputs left behind"
