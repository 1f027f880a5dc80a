"""geoseg.runlock: one run per output; a second stops at once; a killed holder frees it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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


# --- a lock file that cannot be created or written: one OutputError line, exit 2 (audit finding #4) ---
# Real failures that need no root (root bypasses permissions, so chmod/chattr cannot stand in for them here).


def test_a_lock_path_that_is_a_folder_is_one_output_error(tmp_path):
    lock = tmp_path / ".out.gpkg.geoseg-lock"
    lock.mkdir()
    with pytest.raises(OutputError) as err, run_lock(lock, "footprints out.gpkg"):
        pass
    assert str(err.value) == f"cannot create the lock file {lock}: is a directory; remove it or choose another output"
    assert lock.is_dir()  # left as found


def test_a_lock_under_a_file_or_in_proc_is_one_output_error(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OutputError, match=r"^cannot create the lock file .*/plain/\.o\.gpkg\.geoseg-lock: "
                                          r"(file exists|not a directory); remove it or choose another output$"), \
            run_lock(lock_path_for(tmp_path / "plain" / "o.gpkg"), "x"):
        pass
    if Path("/proc/self").is_dir():
        with pytest.raises(OutputError, match=r"^cannot create the lock file /proc/\.out\.gpkg\.geoseg-lock: "), \
                run_lock(lock_path_for(Path("/proc/out.gpkg")), "x"):
            pass


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (not Linux)")
def test_a_lock_file_that_cannot_be_written_is_one_output_error_and_is_left_alone(tmp_path):
    """The lock is a link to /dev/full: it opens and locks, but writing the pid fails (as on a full disk)."""
    lock = tmp_path / ".out.gpkg.geoseg-lock"
    lock.symlink_to("/dev/full")
    with pytest.raises(OutputError, match=rf"^cannot create the lock file {lock}: .+; remove it or choose another "
                                          "output$"), run_lock(lock, "x"):
        pass
    assert lock.is_symlink() and Path("/dev/full").exists()
    lock.unlink()
    with run_lock(lock, "x"):  # the failed attempt held nothing
        assert lock.read_text().startswith("pid ")


def test_segment_with_an_unusable_lock_file_exits_2_with_one_line(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((64, 64)))
    out = tmp_path / "b.gpkg"
    lock_path_for(out).mkdir()
    r = CliRunner().invoke(cli, ["segment", str(src), "-o", str(out), "-m", str(pixel_card), "--progress", "none"])
    assert r.exit_code == 2, r.output
    assert r.output.strip() == (f"geoseg: error: cannot create the lock file {lock_path_for(out)}: is a directory; "
                                "remove it or choose another output")
    assert not out.exists() and not (tmp_path / ".b.gpkg.geoseg-work").exists()


def test_a_lock_file_removed_by_its_holder_just_before_locking_is_locked_again(tmp_path, monkeypatch):
    """The holder removes the file as it ends: a run that opened it just before then locked a file no longer at the
    path, and a third run could lock the new file at the same time."""
    import os

    from geoseg import runlock

    lock = tmp_path / ".out.gpkg.geoseg-lock"
    real, calls = runlock._try_lock, []

    def holder_ends_meanwhile(f):
        calls.append(f.name)
        if len(calls) == 1:  # the holder removes its file between our open and our lock; another run recreates it
            os.unlink(lock)
            lock.write_text("pid 1")
        return real(f)

    monkeypatch.setattr(runlock, "_try_lock", holder_ends_meanwhile)
    with run_lock(lock, "footprints out.gpkg"):
        assert len(calls) == 2, "the removed file was dropped and the one at the path locked"
        monkeypatch.setattr(runlock, "_try_lock", real)
        with pytest.raises(OutputError, match="another geoseg run"), run_lock(lock, "footprints out.gpkg"):
            pass


def test_vectorize_and_evaluate_matches_refuse_an_output_another_run_is_writing(tmp_path):
    import numpy as np
    from affine import Affine

    prob = write_raster(tmp_path / "p.tif", (scene((64, 64), [(10, 10, 40, 40)])[:1] > 100).astype(np.uint8) * 255,
                        transform=Affine(0.5, 0, 500000, 0, -0.5, 5000000))
    out = tmp_path / "b.gpkg"
    with run_lock(lock_path_for(out), str(out)):  # a segment run writing b.gpkg
        r = CliRunner().invoke(cli, ["vectorize", str(prob), "-o", str(out), "--progress", "none"])
        assert r.exit_code == 2 and "another geoseg run" in r.output and not out.exists()
    r = CliRunner().invoke(cli, ["vectorize", str(prob), "-o", str(out), "--progress", "none"])
    assert r.exit_code == 0, r.output
    m = tmp_path / "m.gpkg"
    with run_lock(lock_path_for(m), str(m)):
        r = CliRunner().invoke(cli, ["evaluate", str(out), "--truth", str(out), "--matches", str(m)])
        assert r.exit_code == 2 and "another geoseg run" in r.output and not m.exists()
