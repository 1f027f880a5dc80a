"""Resuming from damaged state (audit finding #5): a finished chunk that does not read back, or a garbled manifest,
is redone with one warning; it never stops the run."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.config import SegmentConfig, VectorizeConfig
from geoseg.engine.segment import segment
from geoseg.errors import Cancelled, ResumeWarning
from tests.conftest import scene, write_raster
from tests.engine.test_segment import CancelAfter


def cfg(card, **kw):
    return SegmentConfig(model=str(card), vectorize=VectorizeConfig(min_area_m2=10, split_touching=False), **kw)


@pytest.fixture
def interrupted(tmp_path, pixel_card):
    """An input, the reference probabilities of a whole run, and a run of it cancelled part-way (its work folder)."""
    src = write_raster(tmp_path / "in.tif", scene((300, 200), [(40, 20, 120, 90), (150, 100, 260, 180)]))
    segment(str(src), None, tmp_path / "ref.tif", cfg(pixel_card), return_footprints=False)
    with pytest.raises(Cancelled):
        segment(str(src), tmp_path / "o.gpkg", tmp_path / "o.tif", cfg(pixel_card), progress=CancelAfter(4))
    work = tmp_path / ".o.gpkg.geoseg-work"
    chunks = sorted(work.glob("chunk_*.tif"))
    assert len(chunks) >= 3
    return src, work, chunks


def _same_probabilities(a, b) -> bool:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        return np.array_equal(x.read(), y.read()) and np.array_equal(x.dataset_mask(), y.dataset_mask())


def test_finished_chunks_that_do_not_read_are_predicted_again_with_one_warning(tmp_path, pixel_card, interrupted):
    src, work, chunks = interrupted
    chunks[0].write_bytes(b"")  # 0 bytes: a crash before the data reached the disk
    data = chunks[-1].read_bytes()
    chunks[-1].write_bytes(data[: len(data) // 2])  # cut off
    with pytest.warns(ResumeWarning) as seen:
        res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "o.tif", cfg(pixel_card))
    assert len(seen) == 1
    said = str(seen[0].message)
    assert said.startswith(f"2 finished part(s) of the earlier run in {work} could not be read ({chunks[0].name} "
                           "and 1 more: ") and said.endswith("; predicting them again"), said
    assert res.resumed and res.stats.chunks_reused == len(chunks) - 2
    assert _same_probabilities(tmp_path / "ref.tif", tmp_path / "o.tif")
    assert len(res.footprints) == 2


def test_a_finished_chunk_of_the_wrong_size_is_predicted_again(tmp_path, pixel_card, interrupted):
    src, _, chunks = interrupted
    with rasterio.open(chunks[1]) as ds:
        profile, h, w = ds.profile, ds.height, ds.width
    profile.update(width=w - 1)
    with rasterio.open(chunks[1], "w", **profile) as ds:  # a readable GeoTIFF, but not this chunk
        ds.write(np.full((ds.count, ds.height, ds.width), 255, np.uint8))
    with pytest.warns(ResumeWarning, match=rf"^1 finished part\(s\) .*\({chunks[1].name}: 2 bands of {h}x{w - 1} "
                                           rf"pixels, expected 2 of {h}x{w}\); predicting them again$"):
        res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "o.tif", cfg(pixel_card), return_footprints=False)
    assert res.resumed and res.stats.chunks_reused == len(chunks) - 1
    assert _same_probabilities(tmp_path / "ref.tif", tmp_path / "o.tif")


def test_segment_cli_recovers_from_a_garbled_manifest_and_a_truncated_chunk(tmp_path, pixel_card, interrupted):
    src, work, chunks = interrupted
    chunks[0].write_bytes(b"")
    args = ["segment", str(src), "-o", str(tmp_path / "o.gpkg"), "--prob", str(tmp_path / "o.tif"),
            "-m", str(pixel_card), "--progress", "none"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    warned = [line for line in r.output.splitlines() if line.startswith("geoseg: warning:")]
    assert len(warned) == 1 and "could not be read" in warned[0] and "predicting them again" in warned[0], r.output
    assert _same_probabilities(tmp_path / "ref.tif", tmp_path / "o.tif")

    with pytest.raises(Cancelled):
        segment(str(src), tmp_path / "o.gpkg", tmp_path / "o.tif", cfg(pixel_card), progress=CancelAfter(2))
    (work / "manifest.json").write_text('{"fingerp')  # a power loss while it was renamed into place
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    warned = [line for line in r.output.splitlines() if line.startswith("geoseg: warning:")]
    assert warned == [(f"geoseg: warning: the saved state of an earlier run in {work} is damaged "
                       "(manifest.json: not valid JSON); starting over")], r.output
    assert _same_probabilities(tmp_path / "ref.tif", tmp_path / "o.tif")

    with pytest.raises(Cancelled):
        segment(str(src), tmp_path / "o.gpkg", tmp_path / "o.tif", cfg(pixel_card), progress=CancelAfter(2))
    (work / "manifest.json").write_text("[1, 2]")
    r = CliRunner().invoke(cli, [*args, "--no-resume"])  # --no-resume does not even read it: no warning
    assert r.exit_code == 0 and "warning" not in r.output, r.output
    assert _same_probabilities(tmp_path / "ref.tif", tmp_path / "o.tif")
