"""Writing building footprints: GeoPackage 1.3, GeoParquet, FlatGeobuf, GeoJSON, Shapefile.

Writes are atomic (temporary name in the same folder, renamed into place only when
complete) and carry provenance metadata (a flat ``str -> str`` dict) inside the file
where the format allows, else in a ``<output>.geoseg.json`` sidecar.

Where the metadata lives:

* ``.gpkg`` / ``.fgb``: layer metadata (GDAL; GPKG stores it in ``gpkg_metadata``).
* ``.parquet``: parquet schema key-value metadata, key ``b"geoseg"`` (JSON).
* ``.geojson`` / ``.json``: a top-level ``"geoseg"`` member and the layer
  ``"description"`` (JSON text, which GDAL reads back).
* ``.shp``, or whenever the embedded copy does not read back: the sidecar.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from geoseg.errors import InputError, OutputError, OutputFormatError, VectorNotFoundError
from geoseg.io.atomic import check_writable_dir, temp_path_for

VECTOR_EXTENSIONS: dict[str, str] = {
    ".gpkg": "GPKG",
    ".parquet": "Parquet",
    ".fgb": "FlatGeobuf",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
}
SIDECAR_SUFFIX = ".geoseg.json"
PARQUET_KEY = b"geoseg"
_SHP_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_SHP_STALE = (".qix", ".sbn", ".sbx", ".shp.xml", ".qmd")  # old companions of a replaced shapefile
_SQLITE_LEFTOVERS = ("-journal", "-wal", "-shm")


def read_vectors(path: str | os.PathLike, what: str = "vectors", within=None):
    """The features of ``path`` (any vector format GDAL reads, or GeoParquet) as a GeoDataFrame.

    ``within``: a GeoSeries (any CRS) whose bounds limit what is read from a GDAL format (the features whose
    bounding boxes touch them): a city-wide label file read for one tile reads only that tile's part.

    A missing or unreadable file, a table without geometry (a CSV, a spreadsheet) or a file without a CRS raises a
    one-line :class:`InputError` naming ``what`` it was meant to be ("labels", "truth", ...).
    """
    import geopandas as gpd

    path = Path(path)
    if not path.exists():
        raise VectorNotFoundError(f"{what} not found: {path}; check the path")
    parquet = path.suffix.lower() in (".parquet", ".geoparquet")
    if within is not None and not parquet:
        info = _layer_info(path)
        if info is not None and info.get("geometry_type") is None:
            _no_geometry(path, what)  # a bbox read would fail: no geometry field to filter on
        if info is not None and info.get("crs") is None:
            _no_crs(path, what)  # a bbox read would first fail to reproject the bbox into the missing CRS
    try:
        gdf = gpd.read_parquet(path) if parquet else gpd.read_file(path, bbox=within)
    except Exception as exc:  # noqa: BLE001  (GDAL/pyarrow say why in their own words; keep the first clause)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(";")[0].rstrip(".")
        raise InputError(f"{what} {path} cannot be read as vector data ({reason}); "
                         f"give a complete vector file ({', '.join(sorted(set(VECTOR_EXTENSIONS) - {'.json'}))})") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.active_geometry_name is None:
        _no_geometry(path, what)  # GDAL reads a CSV or a spreadsheet as a plain table
    if gdf.crs is None:
        _no_crs(path, what)
    return gdf


def _layer_info(path: Path) -> dict | None:
    """What GDAL says of ``path``'s (first) layer (``crs``, ``geometry_type``: None when it has no geometry field), or
    None when it cannot be read (the read that follows says why)."""
    import pyogrio

    try:
        return pyogrio.read_info(path)
    except Exception:  # noqa: BLE001 - a corrupt file: the read that follows gives the one-line error
        return None


def _no_geometry(path: Path, what: str) -> None:
    raise InputError(f"{what} {path} has no geometry column (a table, not vector data); give a vector file with the "
                     f"outlines ({', '.join(sorted(set(VECTOR_EXTENSIONS) - {'.json'}))})")


def _no_crs(path: Path, what: str) -> None:
    raise InputError(f"{what} {path} has no CRS; set one (e.g. ogr2ogr -a_srs EPSG:<code> fixed.gpkg {path.name})")


def read_polygon_features(path: str | os.PathLike, what: str = "labels", within=None):
    """:func:`read_vectors`, keeping only polygonal features (buildings are areas), empty ones dropped.

    Points or lines among polygons are dropped with a :class:`~geoseg.errors.LabelWarning`; a file whose features
    are all points or lines (e.g. building centroids) is a one-line :class:`InputError`.
    """
    import warnings

    from geoseg.errors import LabelWarning

    gdf = read_vectors(path, what, within)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    mixed = (gdf.geometry.geom_type == "GeometryCollection").to_numpy()
    if mixed.any():  # keep the polygons of a collection
        gdf = gdf.copy()
        gdf.loc[mixed, gdf.geometry.name] = [polygon_parts(g) for g in gdf.geometry[mixed]]
        gdf = gdf[~gdf.geometry.is_empty]
    kinds = gdf.geometry.geom_type
    poly = kinds.isin(("Polygon", "MultiPolygon")).to_numpy()
    if len(gdf) and not poly.any():
        raise InputError(f"{what} {path} holds no polygons ({len(gdf)} {'/'.join(sorted(set(kinds)))} features); "
                         + ("give the area as polygons, not points or lines" if what == "aoi" else
                            "buildings must be outlines (polygons), not points or lines"))
    if not poly.all():
        warnings.warn(f"{what} {path}: {int((~poly).sum())} of {len(gdf)} features are not polygons "
                      f"({'/'.join(sorted(set(kinds[~poly])))}) and are ignored", LabelWarning, stacklevel=2)
    return gdf[poly]


def polygon_parts(geom, none=None):
    """The polygons of ``geom`` (itself if it is one), one Polygon or a MultiPolygon; ``none`` (default: ``geom``
    itself) if it holds none."""
    from shapely.geometry import MultiPolygon, Polygon

    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [p for g in getattr(geom, "geoms", []) for p in (g.geoms if isinstance(g, MultiPolygon) else [g])
             if isinstance(p, Polygon)]
    if not parts:
        return geom if none is None else none
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def polygonal(geoms):
    """Valid polygonal versions of ``geoms``: self-intersecting outlines (common in OSM) are
    repaired, and lines or points left over from the repair are dropped (empty if nothing is left)."""
    import numpy as np
    import shapely
    from shapely.geometry import Polygon

    geoms = np.asarray(geoms, dtype=object).copy()
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    geoms[np.unique(owner[~np.isfinite(coords).all(axis=1)])] = Polygon()  # reprojected far off their CRS's area: inf
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = [polygon_parts(g, Polygon()) for g in shapely.make_valid(geoms[bad])]
    return geoms


def check_vector_output(path: str | os.PathLike) -> None:
    """Raise :class:`OutputError` unless ``path`` has a known extension in an existing, writable folder.

    Creates nothing; call it before doing the work that produces the vectors.
    """
    path = Path(path)
    if path.suffix.lower() not in VECTOR_EXTENSIONS:
        raise OutputFormatError(
            f"cannot write {path}: unknown vector format {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(VECTOR_EXTENSIONS)}"
        )
    if path.is_dir():
        raise OutputFormatError(f"cannot write {path}: it is a folder; give a file name ending in {path.suffix}")
    if path.suffix.lower() == ".shp" and path.suffix != ".shp":
        raise OutputFormatError(f"cannot write {path}: GDAL names a shapefile's files in lower case ({path.stem}.shp, "
                          f".dbf, ...), so {path.name} would not exist; name it {path.stem}.shp")
    check_writable_dir(path)


def _bytes_needed(gdf) -> int:
    """About what writing ``gdf`` takes on disk (twice its geometries' WKB, plus 1 MiB): SQLite rolls a failed
    transaction back and frees its journal, so after a disk-full failure the folder must have less than this free
    for the failure to be called a full disk."""
    try:
        return 2 * int(gdf.geometry.to_wkb().str.len().sum()) + (1 << 20)
    except Exception:  # noqa: BLE001 - only an estimate for the message
        return 1 << 20


def write_vectors(gdf, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``gdf`` to ``path`` (format from the extension) atomically; returns the path.

    ``metadata`` values that are not strings are stored as JSON text. An existing
    output is replaced only once the new one is complete; on failure nothing is left
    behind and :class:`OutputError` is raised. Empty frames give a valid, empty layer.
    """
    path = Path(path)
    check_vector_output(path)
    driver = VECTOR_EXTENSIONS[path.suffix.lower()]
    meta = _flat_metadata(metadata)
    tmp = temp_path_for(path)
    tmp_sidecar = _sidecar(tmp)
    if driver == "GeoJSON":
        gdf = _geojson_crs(gdf, path)

    def discard() -> None:
        for leftover in _temp_files(tmp, driver) + [tmp_sidecar]:
            leftover.unlink(missing_ok=True)

    try:
        _WRITERS[driver](gdf, tmp, path.stem, meta)
        if meta and _embedded_metadata(tmp) != meta:
            tmp_sidecar.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    except OutputError:
        discard()
        raise
    except BaseException as exc:  # any failure: report it as an output problem (why: the OS's reason) and leave nothing
        discard()
        if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: unwind as they are
            raise
        from geoseg.io.atomic import write_failure

        raise write_failure(str(path), exc, tmp, min_free=_bytes_needed(gdf)) from exc
    from geoseg.io.atomic import commit

    def rename() -> None:
        try:
            _commit(tmp, path)
            if tmp_sidecar.exists():
                os.replace(tmp_sidecar, _sidecar(path))
            elif _sidecar(path).exists():
                _sidecar(path).unlink()  # stale provenance of the output just replaced
        except OSError as exc:
            from geoseg.io.atomic import write_failure

            raise write_failure(str(path), exc, tmp) from exc
        finally:
            discard()

    commit(rename, discard)  # now, or with the run's other output (geoseg.io.atomic.deferred_commits)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The provenance metadata stored by :func:`write_vectors` (``{}`` if there is none)."""
    path = Path(path)
    if not path.exists():
        raise VectorNotFoundError(f"{path} does not exist; check the path")
    embedded = _embedded_metadata(path)
    if embedded:
        return embedded
    sidecar = _sidecar(path)
    if sidecar.is_file():
        return {str(k): str(v) for k, v in json.loads(sidecar.read_text(encoding="utf-8")).items()}
    return {}


def _flat_metadata(metadata: dict | None) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str) for k, v in (metadata or {}).items()}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _temp_files(tmp: Path, driver: str) -> list[Path]:
    if driver == "ESRI Shapefile":
        return [tmp.with_suffix(part) for part in _SHP_PARTS]
    return [tmp] + [tmp.with_name(tmp.name + s) for s in _SQLITE_LEFTOVERS]


def _commit(tmp: Path, path: Path) -> None:
    """Rename the finished temporary output (all shapefile parts) onto ``path``."""
    if path.suffix.lower() != ".shp":
        os.replace(tmp, path)
        return
    for part in _SHP_PARTS[1:] + _SHP_PARTS[:1]:  # the .shp last: it is what readers open
        if tmp.with_suffix(part).exists():
            os.replace(tmp.with_suffix(part), path.with_suffix(part))
        else:
            path.with_suffix(part).unlink(missing_ok=True)
    for stale in _SHP_STALE:
        path.with_name(path.stem + stale).unlink(missing_ok=True)


def _write_ogr(gdf, tmp: Path, layer: str, driver: str, **options) -> None:
    import pyogrio

    geometry_type = "Polygon" if len(gdf) == 0 else None  # nothing to infer the type from
    pyogrio.write_dataframe(gdf, tmp, layer=layer, driver=driver, geometry_type=geometry_type, **options)


def _write_gpkg(gdf, tmp: Path, layer: str, meta: dict[str, str]) -> None:
    _write_ogr(gdf, tmp, layer, "GPKG", layer_metadata=meta or None, dataset_options={"VERSION": "1.3"})


def _write_fgb(gdf, tmp: Path, layer: str, meta: dict[str, str]) -> None:
    _write_ogr(gdf, tmp, layer, "FlatGeobuf", layer_metadata=meta or None)


def _geojson_crs(gdf, path: Path):
    """GeoJSON names its CRS only by an authority code (GDAL writes no ``crs`` member otherwise, and readers then
    take the coordinates for longitude/latitude): a CRS without an EPSG code goes to EPSG:4326, with a warning."""
    import warnings

    from geoseg.errors import OutputWarning

    if gdf.crs is None:
        return gdf
    code = gdf.crs.to_epsg(min_confidence=100)
    if code is not None:  # the same CRS, named by its code (a WKT without one would be written without a crs)
        return gdf.set_crs(f"EPSG:{code}", allow_override=True)
    name = gdf.crs.name if gdf.crs.name not in ("", "unknown") else gdf.crs.to_string()
    warnings.warn(f"GeoJSON can name a CRS only by its EPSG code and {name!r} has none, so {path.name} is "
                  "written in EPSG:4326 (longitude/latitude); write .gpkg, .fgb or .parquet to keep that CRS",
                  OutputWarning, stacklevel=3)
    return gdf.to_crs("EPSG:4326")


def _write_geojson(gdf, tmp: Path, layer: str, meta: dict[str, str]) -> None:
    options = {"RFC7946": "NO"}
    if meta:
        options["DESCRIPTION"] = json.dumps(meta, sort_keys=True)
        options["FOREIGN_MEMBERS_COLLECTION"] = json.dumps({"geoseg": meta}, sort_keys=True)
    _write_ogr(gdf, tmp, layer, "GeoJSON", layer_options=options)


def _write_shp(gdf, tmp: Path, layer: str, meta: dict[str, str]) -> None:
    _write_ogr(gdf, tmp, layer, "ESRI Shapefile", encoding="UTF-8")


def _write_parquet(gdf, tmp: Path, layer: str, meta: dict[str, str]) -> None:
    import pyarrow.parquet as pq

    try:
        from geopandas.io.arrow import _geopandas_to_arrow  # the table to_parquet() writes, with "geo" metadata
    except ImportError:  # pragma: no cover - private API moved: round-trip through the file
        gdf.to_parquet(tmp, index=False)
        table = pq.read_table(tmp)
    else:
        table = _geopandas_to_arrow(gdf, index=False)
    if meta:
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[PARQUET_KEY] = json.dumps(meta, sort_keys=True).encode("utf-8")
        table = table.replace_schema_metadata(schema_meta)
    pq.write_table(table, tmp)


_WRITERS = {
    "GPKG": _write_gpkg,
    "Parquet": _write_parquet,
    "FlatGeobuf": _write_fgb,
    "GeoJSON": _write_geojson,
    "ESRI Shapefile": _write_shp,
}


def _embedded_metadata(path: Path) -> dict[str, str] | None:
    """Metadata stored inside the file itself, or None where the format holds none."""
    driver = VECTOR_EXTENSIONS.get(path.suffix.lower())
    if driver == "Parquet":
        import pyarrow.parquet as pq

        raw = (pq.read_schema(path).metadata or {}).get(PARQUET_KEY)
        return _json_dict(raw)
    if driver in ("GPKG", "FlatGeobuf", "GeoJSON"):
        import pyogrio

        layer_meta = pyogrio.read_info(path).get("layer_metadata") or {}
        if driver == "GeoJSON":
            return _json_dict(layer_meta.get("DESCRIPTION"))
        return {str(k): str(v) for k, v in layer_meta.items()} or None
    return None


def _json_dict(raw: str | bytes | None) -> dict[str, str] | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None
