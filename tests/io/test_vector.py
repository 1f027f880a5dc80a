"""write_vectors / read_metadata: every format round-trips; writes are atomic."""

from __future__ import annotations

import json
import os
import sqlite3
import sys

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Polygon, box

from geoseg.errors import OutputError
from geoseg.io import vector
from geoseg.io.vector import VECTOR_EXTENSIONS, check_vector_output, read_metadata, write_vectors

META = {
    "geoseg_version": "0.1.0",
    "model": "unit-model",
    "model_sha256": "ab" * 32,
    "settings": json.dumps({"threshold": 0.5, "min_area_m2": 4.0}),
}


def footprints(n: int = 3) -> gpd.GeoDataFrame:
    ring = Polygon(box(0, 0, 30, 30).exterior.coords, [box(10, 10, 20, 20).exterior.coords])
    geoms = [box(500000 + 40 * i, 5000000, 500020 + 40 * i, 5000010) for i in range(n)]
    if n:
        geoms[-1] = ring
    return gpd.GeoDataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "area_m2": [g.area for g in geoms],
            "p_mean": np.linspace(0.6, 0.9, n),
            "gsd_m": np.full(n, 0.5),
            "model": ["unit-model"] * n,
            "reg_status": np.array([0, 1, -1][:n], dtype=np.int64),
        },
        geometry=geoms,
        crs="EPSG:32633",
    )


def read_back(path) -> gpd.GeoDataFrame:
    return gpd.read_parquet(path) if str(path).endswith(".parquet") else gpd.read_file(path)


@pytest.mark.parametrize("ext", sorted(VECTOR_EXTENSIONS))
def test_every_format_round_trips(tmp_path, ext):
    gdf = footprints()
    out = write_vectors(gdf, tmp_path / f"buildings{ext}", metadata=META)
    assert out == tmp_path / f"buildings{ext}" and out.is_file()
    back = read_back(out).sort_values("id", ignore_index=True)  # FlatGeobuf stores R-tree order
    assert len(back) == len(gdf)
    assert back.crs == gdf.crs
    for col in ("id", "reg_status"):
        assert back[col].tolist() == gdf[col].tolist()
    assert np.allclose(back["p_mean"], gdf["p_mean"]) and np.allclose(back["area_m2"], gdf["area_m2"])
    assert back["model"].tolist() == gdf["model"].tolist()
    assert all(a.normalize().equals_exact(b.normalize(), 1e-6) for a, b in zip(back.geometry, gdf.geometry))
    assert read_metadata(out) == META
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("ext", sorted(VECTOR_EXTENSIONS))
def test_a_crs_without_an_epsg_code_is_kept_or_geojson_says_where_it_went(tmp_path, ext):
    """A local transverse Mercator (no EPSG code): every format records it, except GeoJSON, which can only name an
    EPSG code; there the footprints go to EPSG:4326 with a warning, never projected metres labelled as degrees.
    A CRS that is an EPSG one, in WKT without its code, is written under its code."""
    from pyproj import CRS

    from geoseg.errors import OutputWarning

    local = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=16 +k=0.9999 +x_0=500000 +y_0=0 +datum=WGS84 +units=m")
    gdf = footprints().to_crs(local)
    if VECTOR_EXTENSIONS[ext] == "GeoJSON":
        with pytest.warns(OutputWarning, match="EPSG:4326"):
            out = write_vectors(gdf, tmp_path / f"b{ext}")
        back = read_back(out)
        assert back.crs.to_epsg() == 4326
        assert back.geometry.iloc[0].equals_exact(gdf.to_crs(4326).geometry.iloc[0], 1e-9)
    else:
        back = read_back(write_vectors(gdf, tmp_path / f"b{ext}")).sort_values("id", ignore_index=True)
        assert CRS(back.crs).equals(local, ignore_axis_order=True)
        assert back.geometry.iloc[0].normalize().equals_exact(gdf.geometry.iloc[0].normalize(), 1e-6)
    utm_without_code = footprints().set_crs(CRS.from_epsg(32633).to_wkt().replace('ID["EPSG",32633]', ""),
                                            allow_override=True)
    back = read_back(write_vectors(utm_without_code, tmp_path / f"utm{ext}"))
    assert back.crs.to_epsg() == 32633


@pytest.mark.parametrize("ext", sorted(VECTOR_EXTENSIONS))
def test_empty_frames_write_valid_files(tmp_path, ext):
    out = write_vectors(footprints(0), tmp_path / f"none{ext}")
    back = read_back(out)
    assert len(back) == 0
    assert back.crs == "EPSG:32633"
    if ext not in (".geojson", ".json"):  # GeoJSON has no schema without features
        assert {"id", "area_m2", "p_mean", "model", "reg_status"} <= set(back.columns)
    assert read_metadata(out) == {}


def test_metadata_lives_inside_the_file_where_possible(tmp_path):
    import pyarrow.parquet as pq

    for ext in (".gpkg", ".parquet", ".fgb", ".geojson"):
        write_vectors(footprints(), tmp_path / f"b{ext}", metadata=META)
        assert not (tmp_path / f"b{ext}.geoseg.json").exists(), ext
    assert json.loads(pq.read_schema(tmp_path / "b.parquet").metadata[b"geoseg"]) == META
    assert json.loads((tmp_path / "b.geojson").read_text())["geoseg"] == META
    shp = write_vectors(footprints(), tmp_path / "b.shp", metadata={"model": "m", "n": 3})
    assert json.loads((tmp_path / "b.shp.geoseg.json").read_text()) == {"model": "m", "n": "3"}
    assert read_metadata(shp) == {"model": "m", "n": "3"}
    write_vectors(footprints(), shp)  # rewritten without metadata: no stale sidecar
    assert read_metadata(shp) == {} and not (tmp_path / "b.shp.geoseg.json").exists()


def test_geopackage_is_version_1_3(tmp_path):
    out = write_vectors(footprints(), tmp_path / "b.gpkg", metadata=META)
    with sqlite3.connect(out) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10300


def test_unknown_extension_lists_the_supported_ones(tmp_path):
    with pytest.raises(OutputError) as err:
        write_vectors(footprints(), tmp_path / "b.kml")
    message = str(err.value)
    assert "\n" not in message
    assert all(ext in message for ext in VECTOR_EXTENSIONS)
    with pytest.raises(OutputError) as err:
        check_vector_output(tmp_path / "no_extension")
    assert isinstance(err.value, ValueError)  # a bad name, not an I/O failure: also the builtin ValueError
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destinations_are_refused_before_work(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_vector_output(tmp_path / "missing" / "b.gpkg")
    with pytest.raises(OutputError):
        write_vectors(footprints(), tmp_path / "missing" / "b.gpkg")
    (tmp_path / "dir.gpkg").mkdir()
    with pytest.raises(OutputError, match="folder"):
        check_vector_output(tmp_path / "dir.gpkg")
    check_vector_output(tmp_path / "fine.fgb")  # creates nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.gpkg"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            write_vectors(footprints(), locked / "b.gpkg")
    finally:
        locked.chmod(0o700)


def test_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    import geoseg.io.atomic

    monkeypatch.setattr(geoseg.io.atomic.os, "access", lambda path, mode: not mode & os.W_OK)
    with pytest.raises(OutputError, match="not writable"):
        write_vectors(footprints(), tmp_path / "b.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".gpkg", ".shp", ".parquet"])
def test_failed_rename_leaves_the_old_output_intact(tmp_path, monkeypatch, ext):
    out = write_vectors(footprints(2), tmp_path / f"b{ext}", metadata={"run": "first"})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(vector.os, "replace", broken_replace)
    with pytest.raises(OutputError, match="disk full"):
        write_vectors(footprints(3), out, metadata={"run": "second"})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert len(read_back(out)) == 2 and read_metadata(out) == {"run": "first"}


def test_unwritable_value_fails_cleanly(tmp_path):
    gdf = footprints()
    gdf["bad"] = np.array([1j, 2j, 3j])  # no OGR field type for complex numbers
    for ext in (".gpkg", ".shp", ".fgb"):
        with pytest.raises(OutputError):
            write_vectors(gdf, tmp_path / f"b{ext}")
    assert list(tmp_path.iterdir()) == []


def test_read_vectors_reads_every_format_with_its_crs(tmp_path):
    from geoseg.io.vector import read_vectors

    gdf = footprints().to_crs(4326)
    for ext in (".gpkg", ".parquet", ".fgb", ".geojson", ".shp"):
        back = read_vectors(write_vectors(gdf, tmp_path / f"a{ext}"), "labels")
        assert back.crs.to_epsg() == 4326 and len(back) == len(gdf)
        assert back.to_crs(32633).area.sum() == pytest.approx(footprints().area.sum(), rel=1e-6)


@pytest.mark.parametrize("content,needle", [
    (None, "labels not found: "),
    (b'{"type": "FeatureColl', "cannot be read as vector data"),
    (b"PAR1 not a parquet file", "cannot be read as vector data"),
])
def test_read_vectors_refuses_missing_or_corrupt_files_in_one_line(tmp_path, content, needle):
    from geoseg.errors import InputError
    from geoseg.io.vector import read_vectors

    path = tmp_path / ("a.parquet" if content and content.startswith(b"PAR1") else "a.geojson")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_vectors(path, "labels")
    assert needle in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)
    assert isinstance(err.value, FileNotFoundError) == (content is None)  # a missing file is also the builtin


def test_read_vectors_refuses_a_file_without_a_crs(tmp_path):
    from geoseg.errors import InputError
    from geoseg.io.vector import read_vectors

    with pytest.warns(UserWarning, match="crs"):  # the writer's own complaint
        gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]).to_file(tmp_path / "naive.gpkg")
    with pytest.raises(InputError, match="has no CRS; set one"):
        read_vectors(tmp_path / "naive.gpkg", "labels")


@pytest.mark.parametrize("within", [False, True])
@pytest.mark.parametrize("content", ["a,b\n1,2\n", "a,b\n"])
def test_a_table_without_geometry_is_a_one_line_error_naming_the_file(tmp_path, content, within):
    """Labels given as a CSV (GDAL reads it as a plain table, a DataFrame without .crs) were an internal
    AttributeError; read within a bbox, GDAL's "Cannot set spatial filter" (or "no CRS")."""
    from geoseg.errors import InputError
    from geoseg.io.vector import read_polygon_features, read_vectors

    path = tmp_path / "lab.csv"
    path.write_text(content)
    area = gpd.GeoSeries([box(500000, 5000000, 500100, 5000100)], crs=32633) if within else None
    for read in (read_vectors, read_polygon_features):
        with pytest.raises(InputError) as err:
            read(path, "labels", within=area)
        msg = str(err.value)
        assert msg.startswith(f"labels {path} has no geometry column") and "give a vector file" in msg
        assert "\n" not in msg


def test_polygon_features_drop_points_and_lines_with_a_warning_and_keep_collection_polygons(tmp_path):
    from shapely.geometry import GeometryCollection, LineString, Point

    from geoseg.errors import LabelWarning
    from geoseg.io.vector import read_polygon_features

    geoms = [box(0, 0, 10, 10), Point(5, 5), LineString([(0, 0), (3, 3)]),
             GeometryCollection([box(20, 0, 30, 10), Point(1, 1)])]
    gpd.GeoDataFrame(geometry=geoms, crs=32633).to_file(tmp_path / "m.gpkg")
    with pytest.warns(LabelWarning, match="2 of 4 features are not polygons"):
        got = read_polygon_features(tmp_path / "m.gpkg", "labels")
    assert list(got.geometry.geom_type) == ["Polygon", "Polygon"]
    assert got.geometry.iloc[1].equals(box(20, 0, 30, 10))


def test_points_only_are_a_one_line_error_and_an_empty_file_is_not(tmp_path):
    from shapely.geometry import Point

    from geoseg.errors import InputError
    from geoseg.io.vector import read_polygon_features

    gpd.GeoDataFrame(geometry=[Point(0, 0), Point(5, 5)], crs=32633).to_file(tmp_path / "pts.gpkg")
    with pytest.raises(InputError, match="holds no polygons .2 Point features.") as err:
        read_polygon_features(tmp_path / "pts.gpkg", "truth")
    assert "\n" not in str(err.value) and str(err.value).startswith("truth ")
    gpd.GeoDataFrame(geometry=[], crs=32633).to_file(tmp_path / "none.gpkg")
    assert read_polygon_features(tmp_path / "none.gpkg").empty


def test_an_output_folder_must_be_a_folder_that_can_be_made(tmp_path):
    from geoseg.io.atomic import check_output_dir

    check_output_dir(tmp_path / "new" / "deeper", "--keep new/deeper")  # creatable: fine, and nothing is made
    assert not (tmp_path / "new").exists()
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="--keep f is a file, not a folder"):
        check_output_dir(tmp_path / "f", "--keep f")
    with pytest.raises(OutputError, match=r"cannot be created or written \(.*f is not a writable folder\)"):
        check_output_dir(tmp_path / "f" / "sub", "--export f/sub")


def test_outlines_reprojected_to_infinity_become_empty_without_a_numpy_warning():
    """An aoi far outside the raster's CRS's area can come out of reprojection with inf coordinates."""
    import warnings

    from shapely.geometry import Polygon, box

    from geoseg.io.vector import polygonal

    inf = float("inf")
    off = Polygon([(inf, 0), (inf, 1), (0, 1), (0, 0)])
    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = polygonal([off, box(0, 0, 1, 1), bowtie])
    assert out[0].is_empty and out[1].area == 1 and out[2].is_valid and out[2].area > 0


def test_an_upper_case_shp_output_is_refused_before_any_work(tmp_path):
    """GDAL writes OLD.SHP as OLD.shp/.dbf/...: the path the user gave (and geoseg reported) did not exist."""
    from geoseg.io.vector import check_vector_output

    with pytest.raises(OutputError, match=r"name it OLD\.shp$"):
        check_vector_output(tmp_path / "OLD.SHP")
    check_vector_output(tmp_path / "old.shp")


FSIZE_LIMITED = """
import resource, signal, sys
import geopandas as gpd
from shapely.geometry import box
from geoseg.errors import OutputError
from geoseg.io.vector import write_vectors
gdf = gpd.GeoDataFrame({"id": range(20000)}, geometry=[box(i, 0, i + 0.5, 0.5) for i in range(20000)], crs=32633)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a capped disk
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
try:
    write_vectors(gdf, sys.argv[1])
except OutputError as exc:
    print(exc)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
@pytest.mark.parametrize("ext", [".gpkg", ".fgb", ".geojson", ".parquet"])
def test_a_write_the_os_refuses_says_why_in_one_line_and_leaves_nothing(tmp_path, ext):
    """A real failed write (a file size limit: writes past 200 kB fail with EFBIG): one line that says what to do,
    and no temporary file left. A full disk takes the same path (geoseg.io.atomic.write_failure names it)."""
    import subprocess

    out = tmp_path / f"b{ext}"
    r = subprocess.run([sys.executable, "-c", FSIZE_LIMITED, str(out)], capture_output=True, text=True, timeout=120,
                       check=False)
    message = r.stdout.strip()
    # the reason is the OS's (EFBIG) where the writer leaves a file to probe, else the driver's own words
    assert message.startswith(f"cannot write {out}: ") and message.endswith("write elsewhere"), (r.stdout, r.stderr)
    assert "\n" not in message and "Traceback" not in r.stderr and list(tmp_path.iterdir()) == []


def test_a_signal_during_a_shapefiles_renames_waits_until_every_part_is_new(tmp_path, monkeypatch):
    """Its parts are renamed one by one: a SIGTERM between two left a new .dbf beside the old .shp (117 of 119 rows
    without geometry). The CLI's handlers now hold the signal until the last part is in place."""
    from geoseg.interrupts import deliver

    out = tmp_path / "b.shp"
    write_vectors(footprints(3), out)
    real, renames = os.replace, []

    def signal_after_the_first(src, dst):
        real(src, dst)
        renames.append(dst)
        if len(renames) == 1:
            deliver(KeyboardInterrupt)  # what the CLI's SIGINT/SIGTERM handler does

    monkeypatch.setattr(vector.os, "replace", signal_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        write_vectors(footprints(2), out)
    monkeypatch.setattr(vector.os, "replace", real)
    back = read_back(out)
    assert len(back) == 2 and back.geometry.notna().all() and len(renames) >= 3
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name or "geoseg-tmp" in p.name]


def test_deferred_commits_replace_both_outputs_or_neither(tmp_path, monkeypatch):
    from geoseg.io.atomic import atomic_output, deferred_commits

    a, b = tmp_path / "a.gpkg", tmp_path / "p.txt"
    write_vectors(footprints(3), a)
    b.write_text("old")
    with pytest.raises(KeyboardInterrupt), deferred_commits():  # a cancel while the second output is written
        with atomic_output(b) as tmp:
            tmp.write_text("new")
        monkeypatch.setattr(vector, "_WRITERS", {**vector._WRITERS, "GPKG": _interrupted})
        write_vectors(footprints(2), a)
    assert len(read_back(a)) == 3 and b.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gpkg", "p.txt"]
    monkeypatch.undo()
    with deferred_commits():
        with atomic_output(b) as tmp:
            tmp.write_text("new")
        write_vectors(footprints(2), a)
        assert b.read_text() == "old", "committed at the end of the block, not before"
    assert len(read_back(a)) == 2 and b.read_text() == "new"


def _interrupted(*args, **kwargs):
    raise KeyboardInterrupt
