"""Experiment configs: one TOML or YAML file per training run (same keys either way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoseg.errors import ConfigError

REQUIRED = ("name", "architecture", "data", "train")


def load_experiment(path: str | Path) -> dict[str, Any]:
    """Parse ``path`` (``.toml``, ``.yaml`` or ``.yml``) and check its top-level sections."""
    path = Path(path)
    text = path.read_text()
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            cfg = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc})") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError("YAML configs need PyYAML: pip install 'geoseg[train]' (or pyyaml)") from None
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{path} is not valid YAML ({first})") from None
    else:
        raise ConfigError(f"{path}: experiment configs are .toml, .yaml or .yml files")
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path} must hold a mapping with {', '.join(REQUIRED)}")
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}; see configs/scinet_r18_buildings.toml")
    return cfg


_POSITIVE_INTS = ("chip_size", "batch_size", "steps_per_epoch", "epochs")
LOSS_NAMES = ("bce_dice", "bce_lovasz")  # train.loss: the building channel's loss (geoseg.train.losses.LOSSES)
TRAIN_KEYS = frozenset({  # every [train] setting; scripts/train_pair.py (GPU runs) reads the last two
    *_POSITIVE_INTS, "gsd_range", "lr", "val_chip_size", "channel_weights", "seed", "precision", "device", "threads",
    "source", "tile_size", "cache_tiles", "workers", "checkpoint_every_s", "color_shift", "accumulate", "freeze_bn",
    "deterministic", "loss", "init_model", "init_encoder", "max_seconds", "val_every_s"})


def _check_train_keys(t: dict[str, Any]) -> None:
    import difflib

    for key in t:
        if key not in TRAIN_KEYS:
            near = difflib.get_close_matches(key, sorted(TRAIN_KEYS), n=1)
            hint = f"did you mean {near[0]}?" if near else "see docs/training.md for the settings"
            raise ConfigError(f"train.{key} is not a training setting ({hint}); fix or remove it")
    if t.get("source", "tiles") not in ("tiles", "memory"):
        raise ConfigError(f"train.source must be 'tiles' (read on the fly) or 'memory' (load once), not {t['source']!r}")
    for key in ("threads", "workers", "tile_size", "cache_tiles"):
        v, floor = t.get(key, 1), 0 if key == "workers" else 1
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= floor):
            raise ConfigError(f"train.{key} must be a whole number >= {floor}, not {v!r}")


def check_experiment(cfg: dict[str, Any]) -> None:
    """Raise a one-line :class:`ConfigError` for a value ``fit`` cannot train with (checked before any data is read)."""
    t, d = cfg["train"], cfg["data"]
    _check_train_keys(t)
    for key in (*_POSITIVE_INTS, "gsd_range", "lr"):
        if key not in t:
            raise ConfigError(f"train.{key} is missing; see configs/scinet_r18_buildings.toml")
    for key in _POSITIVE_INTS:
        if not isinstance(t[key], int) or t[key] < 1:
            raise ConfigError(f"train.{key} must be a whole number >= 1, not {t[key]!r}")
    if t["chip_size"] % 32:
        raise ConfigError(f"train.chip_size must be a multiple of 32 (the models' output stride), not {t['chip_size']}")
    g = t["gsd_range"]
    if not (isinstance(g, list) and len(g) == 2 and all(_positive(v) for v in g) and g[0] <= g[1]):
        raise ConfigError(f"train.gsd_range must be [finest, coarsest] in metres, both > 0, not {g!r}")
    if not (_positive(t["lr"]) or t["lr"] == 0):  # 0 freezes the weights (a dry run of the data path)
        raise ConfigError(f"train.lr must be a number >= 0, not {t['lr']!r}")
    shift = t.get("color_shift", 0)
    if not (isinstance(shift, int) and not isinstance(shift, bool) and 0 <= shift <= 255):
        raise ConfigError(f"train.color_shift must be grey levels 0-255 (0: off), not {shift!r}")
    acc = t.get("accumulate", 1)
    if not (isinstance(acc, int) and not isinstance(acc, bool) and acc >= 1):
        raise ConfigError(f"train.accumulate must be a whole number of batches per step >= 1, not {acc!r}")
    if t.get("loss", "bce_dice") not in LOSS_NAMES:
        raise ConfigError(f"train.loss must be {' or '.join(LOSS_NAMES)} (the building channel's loss), not {t['loss']!r}")
    for flag in ("freeze_bn", "deterministic"):
        if not isinstance(t.get(flag, False), bool):
            raise ConfigError(f"train.{flag} must be true or false, not {t[flag]!r}")
    every = t.get("checkpoint_every_s", 600)
    if not (_positive(every) or every == 0):
        raise ConfigError(f"train.checkpoint_every_s must be seconds >= 0 (0: after every step), not {every!r}")
    _check_bands(cfg)
    if shift and cfg["architecture"].get("in_channels", 3) != 3:
        raise ConfigError("train.color_shift shifts red, green and blue: it needs in_channels = 3; set it to 0")
    if not _positive(d.get("base_gsd_m")):
        raise ConfigError(f"data.base_gsd_m must be a GSD in metres > 0, not {d.get('base_gsd_m')!r}")
    if not isinstance(d.get("train"), list) or not d["train"]:
        raise ConfigError("data.train must list at least one { raster = ..., labels = ... } entry")
    for i, e in enumerate(d["train"]):
        if not isinstance(e, dict) or not ({"raster", "raster_glob"} & set(e)) or "labels" not in e:
            raise ConfigError(f"data.train[{i}] needs raster (or raster_glob) and labels, e.g. "
                              f"{{ raster = \"a.tif\", labels = \"a.gpkg\" }}")
        if "raster" in e and "raster_glob" in e:
            raise ConfigError(f"data.train[{i}] gives both raster and raster_glob; keep one")
        _check_aoi(f"data.train[{i}]", e)
        _check_entry_gsds(i, e)
    _check_coverage(d["train"], g)
    for i, e in enumerate(d.get("val", [])):
        gsds = e.get("gsd_m") if isinstance(e, dict) else None
        gsds = gsds if isinstance(gsds, list) else [gsds]
        if not isinstance(e, dict) or "labels" not in e or not ({"raster", "raster_glob"} & set(e)) \
                or not all(_positive(v) for v in gsds):
            raise ConfigError(f"data.val[{i}] needs labels, raster (or raster_glob) and gsd_m (one GSD or a list), "
                              "e.g. { raster = \"v.tif\", labels = \"v.gpkg\", gsd_m = [0.15, 0.3] }")
        _check_aoi(f"data.val[{i}]", e)


def _check_aoi(where: str, entry: dict) -> None:
    if "aoi" in entry and not (isinstance(entry["aoi"], str) and entry["aoi"]):
        raise ConfigError(f"{where}.aoi must be the path of a polygon file (the area where the labels are complete), "
                          f"not {entry['aoi']!r}")


def glob_rasters(pattern: str, where: str) -> list[str]:
    """The files ``pattern`` matches, sorted; a one-line :class:`ConfigError` naming ``where`` if none."""
    import glob
    import os

    files = sorted(glob.glob(str(pattern)))
    if not files:
        raise ConfigError(f"{where} {pattern!r} matches no file (relative paths are read from the current folder, "
                          f"{os.getcwd()}); fix the pattern or the path")
    return files


def check_paths(data: dict[str, Any]) -> None:
    """A one-line :class:`ConfigError` naming the first data entry whose raster or labels do not exist, before any
    region is loaded (loading the others first could take minutes). Relative paths are read from the current folder."""
    import os

    def missing(section: str, i: int, key: str, path: str) -> ConfigError:
        where = "" if os.path.isabs(path) else f" (relative paths are read from the current folder, {os.getcwd()})"
        return ConfigError(f"data.{section}[{i}].{key} not found: {path}{where}; check the path")

    for section in ("train", "val"):
        for i, e in enumerate(data.get(section, [])):
            for key in ("raster", "labels", "aoi"):
                if key in e and not os.path.exists(str(e[key])):
                    raise missing(section, i, key, str(e[key]))
            if "raster_glob" in e:
                glob_rasters(e["raster_glob"], f"data.{section}[{i}].raster_glob")


def _check_bands(cfg: dict[str, Any]) -> None:
    """``architecture.in_channels``, the ``normalization`` of each band and the ``bands`` an entry picks agree."""
    n = cfg["architecture"].get("in_channels", 3)
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
        raise ConfigError(f"architecture.in_channels must be a whole number of bands >= 1, not {n!r}")
    norm = cfg.get("normalization")
    if norm is not None:
        for key in ("mean", "std"):
            v = norm.get(key) if isinstance(norm, dict) else None
            if not (isinstance(v, list) and len(v) == n and all(isinstance(x, (int, float)) for x in v)):
                raise ConfigError(f"normalization.{key} must list {n} numbers (one per band of in_channels = {n}), "
                                  f"not {v!r}")
        if not all(_positive(x) for x in norm["std"]):
            raise ConfigError(f"normalization.std must be > 0 for every band, not {norm['std']!r}")
    for section in ("train", "val"):
        for i, e in enumerate(cfg["data"].get(section, [])):
            b = e.get("bands") if isinstance(e, dict) else None
            if b is not None and not (isinstance(b, list) and len(b) == n
                                      and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in b)):
                raise ConfigError(f"data.{section}[{i}].bands must list {n} band numbers (1-based, one per "
                                  f"in_channels), e.g. {list(range(1, n + 1))}, not {b!r}")


def _check_entry_gsds(i: int, e: dict[str, Any]) -> None:
    if "base_gsd_m" in e and not _positive(e["base_gsd_m"]):
        raise ConfigError(f"data.train[{i}].base_gsd_m must be a GSD in metres > 0, not {e['base_gsd_m']!r}")
    if "chip_gsd_m" not in e:
        return
    span = e["chip_gsd_m"]
    if not (isinstance(span, list) and len(span) == 2 and all(_positive(v) for v in span) and span[0] <= span[1]):
        raise ConfigError(f"data.train[{i}].chip_gsd_m must be [finest, coarsest] chip GSDs in metres, "
                          f"both > 0, not {span!r}")


def _check_coverage(entries: list[dict[str, Any]], gsd_range: list[float]) -> None:
    """Every chip GSD of ``gsd_range`` needs an entry that serves it (one without ``chip_gsd_m`` serves all)."""
    if any("chip_gsd_m" not in e for e in entries):
        return
    reach, gap_end = gsd_range[0], gsd_range[1]
    for lo, hi in sorted(tuple(e["chip_gsd_m"]) for e in entries):
        if lo > reach:
            gap_end = min(lo, gsd_range[1])
            break
        reach = max(reach, hi)
    if reach < gsd_range[1]:
        raise ConfigError(f"no data.train entry serves chips between {reach:g} and {gap_end:g} m of train.gsd_range "
                          f"{gsd_range}; widen a chip_gsd_m or add an entry without one")


def _positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def entry_bands(entry: dict) -> tuple[int, ...] | None:
    """An entry's ``bands`` (1-based, in order) as a tuple, or None (then the bands ``geoseg segment`` picks)."""
    return tuple(int(b) for b in entry["bands"]) if "bands" in entry else None
