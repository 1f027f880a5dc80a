"""geoseg.io.atomic: temporary files a killed run left are removed by the next write of the same output."""

from __future__ import annotations

import subprocess
import sys

import pytest

from geoseg.io.atomic import atomic_output, remove_stale_temps


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


@pytest.mark.skipif(sys.platform == "win32", reason="PIDs are checked with signal 0")
def test_temporary_files_of_a_killed_run_go_those_of_a_running_one_stay(tmp_path):
    out = tmp_path / "p.tif"
    dead = [tmp_path / f".p.tmp-{_dead_pid()}.tif", tmp_path / f".p.tmp-{_dead_pid()}.tif.aux.xml"]
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live_proc:
        try:
            live = tmp_path / f".p.tmp-{live_proc.pid}.tif"
            other = tmp_path / ".q.tmp-1.tif"  # another output's
            for f in (*dead, live, other):
                f.write_bytes(b"half")
            with atomic_output(out) as tmp:
                tmp.write_bytes(b"whole")
            assert out.read_bytes() == b"whole"
            assert not any(f.exists() for f in dead) and live.exists() and other.exists()
            assert remove_stale_temps(out) == []  # the running one's are never taken
        finally:
            live_proc.kill()
