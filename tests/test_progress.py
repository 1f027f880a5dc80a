"""Progress reporters: plain log lines (``--progress lines``, the default where stderr is not a terminal)."""

from __future__ import annotations

import io
import re

from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.progress import LineProgress
from tests.conftest import scene, write_raster


def test_lines_say_each_stage_start_and_end_and_nothing_between_within_the_interval():
    out = io.StringIO()
    p = LineProgress(out, every_s=3600)
    for done in range(5):
        p.update(done, 4, "predict")
    p.update(4, 4, "predict")  # a repeated end is not said twice
    p.update(1, 1, "vectorize")  # a stage that starts finished is said once
    p.update(0, 0, "predict again")  # nothing to do: said once, as ended
    lines = out.getvalue().splitlines()
    assert lines[0] == "geoseg: predict: 0/4"
    assert re.fullmatch(r"geoseg: predict: 4/4 in \d+\.\d s", lines[1])
    assert re.fullmatch(r"geoseg: vectorize: 1/1 in \d+\.\d s", lines[2])
    assert re.fullmatch(r"geoseg: predict again: 0/0 in \d+\.\d s", lines[3]) and len(lines) == 4


def test_lines_while_a_stage_runs_give_its_share_done():
    out = io.StringIO()
    p = LineProgress(out, every_s=0.0)  # every update is due
    p.update(0, 4, "predict")
    p.update(1, 4, "predict")
    p.update(2, 4, "predict")
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("geoseg: predict: 1/4 (25%") and lines[2].startswith("geoseg: predict: 2/4 (50%")
    assert "s left)" in lines[2], "an estimate once two updates give a rate"


def test_the_cli_writes_log_lines_where_stderr_is_not_a_terminal(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((64, 64), [(10, 10, 40, 40)]))
    r = CliRunner().invoke(cli, ["segment", str(src), "-o", str(tmp_path / "o.gpkg"), "--model", str(pixel_card)])
    assert r.exit_code == 0, r.output
    assert "\r" not in r.stderr, "no bar redraws in a log"
    stages = [m[1] for m in re.finditer(r"^geoseg: ([a-z ]+): \d+/\d+ in [\d.]+ s$", r.stderr, re.MULTILINE)]
    assert stages == ["load model", "predict", "vectorize"], r.stderr
