"""geoseg.runlock: one run per output; a second stops at once; a killed holder frees it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.errors import OutputError
from geoseg.runlock import lock_path_for, run_lock
from tests.conftest import scene, write_raster

HOLD = """
import sys, time
from pathlib import Path
from geoseg.runlock import run_lock
with run_lock(Path(sys.argv[1]), "x"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_holder_is_refused_and_the_lock_is_free_again_after(tmp_path):
    lock = tmp_path / ".out.gpkg.geoseg-lock"
    with run_lock(lock, "footprints out.gpkg"):
        assert lock.read_text().startswith("pid ")
        with (pytest.raises(OutputError, match=r"another geoseg run \(pid \d+\) is writing footprints out.gpkg") as err,
              run_lock(lock, "footprints out.gpkg")):
            pass
        assert "\n" not in str(err.value)
    assert not lock.exists()
    with run_lock(lock, "footprints out.gpkg"):
        pass


def test_a_killed_holder_leaves_nothing_held(tmp_path):
    lock = tmp_path / ".geoseg-lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"pid {proc.pid}"), run_lock(lock, "x"):
            pass
    finally:
        proc.kill()
        proc.wait(timeout=30)
    for _ in range(50):  # the OS drops the lock with the process
        try:
            with run_lock(lock, "x"):
                break
        except OutputError:
            time.sleep(0.1)
    else:
        pytest.fail("the lock of a killed process was not released")


def test_segment_refuses_an_output_another_run_is_writing(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((64, 64)))
    out = tmp_path / "b.gpkg"
    with run_lock(lock_path_for(out), str(out)):
        r = CliRunner().invoke(cli, ["segment", str(src), "-o", str(out), "-m", str(pixel_card), "--progress", "none"])
    assert r.exit_code == 2 and "another geoseg run" in r.output and "Traceback" not in r.output, r.output
    assert not out.exists()
    r = CliRunner().invoke(cli, ["segment", str(src), "-o", str(out), "-m", str(pixel_card), "--progress", "none"])
    assert r.exit_code == 0, r.output
    assert out.exists() and not lock_path_for(out).exists()


def test_a_second_segment_stops_before_it_loads_the_model(tmp_path, pixel_card, monkeypatch):
    """It loaded torch and the model first (32 s on a 2-core machine) before saying the output was taken."""
    import geoseg.engine.segment as seg

    def no_model(*args):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(seg, "_predictor", no_model)
    src = write_raster(tmp_path / "in.tif", scene((64, 64)))
    out = tmp_path / "b.gpkg"
    with run_lock(lock_path_for(out), str(out)):
        r = CliRunner().invoke(cli, ["segment", str(src), "-o", str(out), "-m", str(pixel_card), "--progress", "none"])
    assert r.exit_code == 2 and "another geoseg run" in r.output, r.output
