"""geoseg.engine.workdir: damaged resume state is set aside, never fatal; a failed chunk write is one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from geoseg.engine.workdir import WorkDir
from geoseg.errors import OutputError, ResumeWarning
from geoseg.grid import RasterGrid
from geoseg.window import PixelWindow

GRID = RasterGrid((64, 96), Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0), rasterio.crs.CRS.from_epsg(32633))
DEV_FULL = Path("/dev/full")


def _work(path: Path, fp: str = "fp-1", resume: bool = True) -> WorkDir:
    return WorkDir(path, GRID, 1, fp, resume=resume)


def _chunk(work: WorkDir, index=(0, 0)) -> PixelWindow:
    win = PixelWindow(0, 0, 32, 96)
    probs = np.random.default_rng(0).random((1, 32, 96)).astype(np.float32)
    work.write_chunk(index, win, probs, np.ones((32, 96), bool))
    return win


def _no_warnings(fn):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn()
    assert not seen, [str(w.message) for w in seen]
    return out


def test_a_matching_manifest_resumes_and_keeps_finished_chunks(tmp_path):
    work = _work(tmp_path / "w")
    _chunk(work)
    again = _no_warnings(lambda: _work(tmp_path / "w"))
    assert again.resumed and again.done((0, 0))
    other = _no_warnings(lambda: _work(tmp_path / "w", fp="fp-2"))  # other settings: start over, silently
    assert not other.resumed and not other.done((0, 0))


@pytest.mark.parametrize(("content", "said"), [
    (b'{"fingerp', "not valid JSON"),  # cut off by a power loss
    (b"", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    (b"[1, 2]", "a JSON list, not an object"),
    (b'"fp-1"', "a JSON str, not an object"),
])
def test_a_damaged_manifest_is_warned_about_once_and_the_run_starts_over(tmp_path, content, said):
    work = _work(tmp_path / "w")
    _chunk(work)
    (tmp_path / "w" / "manifest.json").write_bytes(content)
    with pytest.warns(ResumeWarning) as seen:
        again = _work(tmp_path / "w")
    assert len(seen) == 1
    assert str(seen[0].message) == (f"the saved state of an earlier run in {tmp_path / 'w'} is damaged "
                                    f"(manifest.json: {said}); starting over")
    assert not again.resumed and not again.done((0, 0))  # the old chunks went with it
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["fingerprint"] == "fp-1"
    assert _no_warnings(lambda: _work(tmp_path / "w")).resumed  # the new manifest is whole


def test_no_resume_does_not_read_the_manifest_at_all(tmp_path, monkeypatch):
    import geoseg.engine.workdir as wd

    work = _work(tmp_path / "w")
    _chunk(work)
    (tmp_path / "w" / "manifest.json").write_bytes(b'{"fingerp')

    def read(*args):
        raise AssertionError("the manifest was read")

    monkeypatch.setattr(wd, "_read_manifest", read)
    again = _no_warnings(lambda: _work(tmp_path / "w", resume=False))
    assert not again.resumed and not again.done((0, 0))


def test_a_work_folder_that_is_a_file_is_replaced(tmp_path):
    (tmp_path / "w").write_text("not a folder")
    work = _no_warnings(lambda: _work(tmp_path / "w"))
    assert not work.resumed and (tmp_path / "w" / "manifest.json").is_file()


def test_a_damaged_kept_tile_is_dropped_and_predicted_again(tmp_path):
    work = _work(tmp_path / "w")
    probs = np.random.default_rng(0).random((1, 16, 16)).astype(np.float32)
    work.save_edge((0, 1), probs)
    assert np.array_equal(work.load_edge((0, 1)), probs)
    path = work.edge_path((0, 1))
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert work.load_edge((0, 1)) is None and not path.exists()


@pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full (not Linux)")
def test_a_full_disk_while_writing_a_chunk_is_one_output_error_and_no_chunk(tmp_path, capfd):
    """A real ENOSPC without root: the chunk's temporary file is a symlink to /dev/full. A chunk is small, so GDAL
    writes it out only when it is closed, where rasterio raises nothing: the failure must still be caught."""
    work = _work(tmp_path / "w")
    tmp = work.path / ".chunk_00000_000.tmp.tif"
    tmp.symlink_to(DEV_FULL)
    capfd.readouterr()
    with pytest.raises(OutputError) as err:
        _chunk(work)
    assert str(err.value) == (f"cannot write the work folder {work.path}: no space left on device; "
                              "free space or write elsewhere")
    assert not work.done((0, 0)) and not tmp.is_symlink()
    assert "No space left" not in capfd.readouterr().err
    assert DEV_FULL.exists()
    _chunk(work)  # room again
    with rasterio.open(work.chunk_path((0, 0))) as ds:
        assert ds.count == 2 and ds.read(2).all()


def test_a_work_folder_that_cannot_be_cleared_is_one_output_error(tmp_path, monkeypatch):
    import shutil

    _chunk(_work(tmp_path / "w"))

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "rmtree", refuse)
    with pytest.raises(OutputError, match=r"^cannot clear the work folder .*/w of an earlier run \(Permission denied\); "
                                          r"remove it or choose another output$"):
        _work(tmp_path / "w", fp="fp-2")
