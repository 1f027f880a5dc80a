"""Experiment configs: one TOML or YAML file per training run (same keys either way)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from geoseg.errors import ConfigError

REQUIRED = ("name", "architecture", "data", "train")


def load_experiment(path: str | Path) -> dict[str, Any]:
    """Parse ``path`` (``.toml``, ``.yaml`` or ``.yml``, UTF-8 text) and check its top-level sections; an
    ``architecture`` without ``classes`` gets the default, 2 (see :func:`fill_defaults`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"{path}: experiment configs are .toml, .yaml or .yml files")
    text = _read_text(path)
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
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path} must hold a mapping with {', '.join(REQUIRED)}")
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}; see configs/scinet_r18_buildings.toml")
    _check_name(cfg["name"])  # before the run folder runs/<name> is made from it
    fill_defaults(cfg)
    return cfg


def _read_text(path: Path) -> str:
    """The config file's text: a one-line :class:`ConfigError` when it is missing, not a file, or not UTF-8 (a
    Latin-1 or UTF-16 file from a Windows editor). A UTF-8 byte-order mark is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"experiment config not found: {path}; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; give the experiment config file (.toml or .yaml) in it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror or exc}); check the file and its permissions") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); save it as UTF-8 "
                          "(in your editor: Save As, encoding UTF-8)") from None


DEFAULT_CLASSES = 2  # building + border: what fit trains when architecture.classes is left out


def fill_defaults(cfg: dict[str, Any]) -> None:
    """Write the defaults every later reader must agree on into ``cfg``: ``architecture.classes`` (2, building +
    border) when left out. fit, the export, the model card and :func:`geoseg.models.arch.build_module` (whose own
    default is 1, for cards) then all see the same number of outputs."""
    arch = cfg.get("architecture")
    if isinstance(arch, dict) and "classes" not in arch:
        arch["classes"] = DEFAULT_CLASSES


_POSITIVE_INTS = ("chip_size", "batch_size", "steps_per_epoch", "epochs")
LOSS_NAMES = ("bce_dice", "bce_lovasz")  # train.loss: the building channel's loss (geoseg.train.losses.LOSSES)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # geoseg.engine.device.resolve_precision
DEVICES = ("cpu", "cuda")  # fit moves the model to train.device as given; without it: CUDA when PyTorch sees a GPU
TRAIN_KEYS = frozenset({  # every [train] setting; scripts/train_pair.py (GPU runs) reads the last two
    *_POSITIVE_INTS, "gsd_range", "lr", "val_chip_size", "channel_weights", "seed", "precision", "device", "threads",
    "source", "tile_size", "cache_tiles", "workers", "checkpoint_every_s", "color_shift", "accumulate", "freeze_bn",
    "deterministic", "loss", "init_model", "init_encoder", "max_seconds", "val_every_s"})
SECTION_KEYS = {  # the settings each section may hold (what fit, geoseg.models.arch.build_module and export read)
    "architecture": (frozenset({"name", "encoder", "in_channels", "classes", "decoder_channels", "aspp_mid",
                                "aspp_out", "rates"}), "an architecture setting"),
    "normalization": (frozenset({"mean", "std"}), "a normalization setting"),
    "data": (frozenset({"base_gsd_m", "train", "val"}), "a data setting"),
    "train": (TRAIN_KEYS, "a training setting"),
}
ENTRY_KEYS = {  # the settings of one data.train / data.val entry (train_regions, val_sets)
    "train": frozenset({"name", "raster", "raster_glob", "labels", "base_gsd_m", "chip_gsd_m", "bands", "aoi"}),
    "val": frozenset({"name", "raster", "raster_glob", "labels", "gsd_m", "bands", "aoi"}),
}
FLOAT_KEYS = {"train": ("lr", "gsd_range", "channel_weights", "checkpoint_every_s", "max_seconds", "val_every_s"),
              "data": ("base_gsd_m",), "normalization": ("mean", "std")}
ENTRY_FLOAT_KEYS = ("base_gsd_m", "chip_gsd_m", "gsd_m")


def _check_keys(where: str, table: dict[str, Any], known: frozenset[str], what: str) -> None:
    """A key of ``table`` not in ``known`` (a typo would be ignored) is an error naming the nearest known key."""
    import difflib

    for key in table:
        if key not in known:
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            if near:
                hint = f"did you mean {near[0]}?"
            elif len(known) > 10:
                hint = "see docs/training.md for the settings"
            else:
                hint = f"known: {', '.join(sorted(known))}"
            raise ConfigError(f"{where}{key} is not {what} ({hint}); fix or remove it")


def _check_name(name: Any) -> None:
    if not (isinstance(name, str) and name.strip() and name not in (".", "..") and not set("/\\\0") & set(name)):
        raise ConfigError(f"name must be a plain folder name (the run folder is runs/<name>), e.g. \"my-model\", "
                          f"not {name!r}")


def _check_sections(cfg: dict[str, Any]) -> None:
    """The name, each section a table, each data list a list, and no key anywhere that no code reads."""
    _check_keys("", cfg, frozenset({"name", *SECTION_KEYS}), "a section of an experiment")
    _check_name(cfg["name"])
    for section, (known, what) in SECTION_KEYS.items():
        if section not in cfg:
            continue
        if not isinstance(cfg[section], dict):
            raise ConfigError(f"{section} must be a table of settings ([{section}] in TOML, {section}: {{...}} in "
                              f"YAML), not {cfg[section]!r}")
        _check_keys(f"{section}.", cfg[section], known, what)
    for section, known in ENTRY_KEYS.items():
        entries = cfg["data"].get(section, [])
        if not isinstance(entries, list):
            raise ConfigError(f"data.{section} must be a list of entries, e.g. [{{ raster = \"a.tif\", labels = "
                              f"\"a.gpkg\" }}], not {entries!r}")
        for i, e in enumerate(entries):
            if isinstance(e, dict):
                _check_keys(f"data.{section}[{i}].", e, known, f"a setting of a data.{section} entry")


def _read_number_text(cfg: dict[str, Any]) -> None:
    """A number given as text at a float setting becomes that number: YAML 1.1 (PyYAML) reads ``5e-4``, without a
    dot, as the text '5e-4'."""
    tables = [(cfg.get(section), keys) for section, keys in FLOAT_KEYS.items()]
    tables += [(e, ENTRY_FLOAT_KEYS) for section in ENTRY_KEYS for e in cfg["data"].get(section, [])]
    for table, keys in tables:
        for key in keys if isinstance(table, dict) else ():
            if key in table:
                v = table[key]
                table[key] = [_number_of_text(x) for x in v] if isinstance(v, list) else _number_of_text(v)


def _number_of_text(v: Any) -> Any:
    if isinstance(v, str):
        try:
            number = float(v)
        except ValueError:
            return v
        return number if math.isfinite(number) else v
    return v


def _check_train_options(t: dict[str, Any]) -> None:
    if t.get("source", "tiles") not in ("tiles", "memory"):
        raise ConfigError(f"train.source must be 'tiles' (read on the fly) or 'memory' (load once), not {t['source']!r}")
    for key in ("threads", "workers", "tile_size", "cache_tiles", "seed"):
        v, floor = t.get(key, 1), 0 if key in ("workers", "seed") else 1
        if not (_whole(v) and v >= floor):
            raise ConfigError(f"train.{key} must be a whole number >= {floor}, not {v!r}")
    vcs = t.get("val_chip_size", 192)
    if not (_whole(vcs) and vcs >= 32 and vcs % 32 == 0):
        raise ConfigError(f"train.val_chip_size must be a multiple of 32 px (the models' output stride), not {vcs!r}")
    for key in ("max_seconds", "val_every_s"):
        if key in t and not _positive(t[key]):
            raise ConfigError(f"train.{key} must be a number of seconds > 0, not {t[key]!r}")


def _check_outputs(t: dict[str, Any], arch: dict[str, Any]) -> None:
    """``architecture.classes`` (1-3 outputs: building, border, gap) and a loss weight for each."""
    n = arch.get("classes", DEFAULT_CLASSES)  # written in by fill_defaults
    if not (_whole(n) and 1 <= n <= 3):
        raise ConfigError(f"architecture.classes must be 1 (building), 2 (+ border) or 3 (+ gap), not {n!r}")
    w = t.get("channel_weights", [1.0, 0.5, 0.5])
    if not (isinstance(w, list) and n <= len(w) <= 3 and all(_number(x) and x >= 0 for x in w)):
        raise ConfigError(f"train.channel_weights must list a loss weight >= 0 for each of the {n} outputs "
                          f"(building, border, gap; classes = {n}), e.g. {[1.0, 0.5, 0.5][:n]}, not {w!r}")


def _check_device(t: dict[str, Any]) -> None:
    """``train.device`` and ``train.precision``, and that a CUDA GPU is there when they need one."""
    device, precision = t.get("device"), t.get("precision", "auto")
    if device is not None and device not in DEVICES:
        raise ConfigError(f"train.device must be cpu or cuda (or left out: CUDA when PyTorch sees a GPU), "
                          f"not {device!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be {', '.join(PRECISIONS)}, not {precision!r}")
    if device != "cuda" and not (device is None and precision == "fp16"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"train.{'device = cuda' if device else 'precision = fp16'} needs a CUDA GPU and PyTorch "
                          "sees none here; use device = \"cpu\" (and precision auto, bf16 or fp32)")


def _check_init(t: dict[str, Any], arch: dict[str, Any]) -> None:
    """``train.init_model`` / ``train.init_encoder`` name a registered model, a card or a weights file that exists,
    and a registered model's architecture fits the one trained (as :func:`geoseg.train.checkpoint.init_from` needs)."""
    import os

    if "init_model" in t and "init_encoder" in t:
        raise ConfigError("give train.init_model (fine-tune a whole model) or train.init_encoder, not both")
    for key in ("init_model", "init_encoder"):
        if key not in t:
            continue
        src = t[key]
        if not (isinstance(src, str) and src):
            raise ConfigError(f"train.{key} must be a registered model's name, a model card (.json), a .safetensors "
                              f"file or a run's last.pt, not {src!r}")
        if src.endswith((".pt", ".safetensors")):
            if not os.path.isfile(src):
                where = "" if os.path.isabs(src) else f" (relative paths are read from the current folder, {os.getcwd()})"
                raise ConfigError(f"train.{key} not found: {src}{where}; train that run first or fix the path")
            continue
        _check_init_card(key, src, arch)


def _check_init_card(key: str, src: str, arch: dict[str, Any]) -> None:
    from geoseg.errors import GeosegError
    from geoseg.models.registry import get_card

    try:
        card = get_card(src)
    except GeosegError as exc:
        raise ConfigError(f"train.{key}: {str(exc).splitlines()[0]}") from None
    if not card.weights_path.is_file():
        raise ConfigError(f"train.{key}: the weights of {card.name!r} are not at {card.weights_path}; reinstall them "
                          "or start from another model")
    default = {"name": "unet", "encoder": "resnet18", "in_channels": 3}  # geoseg.models.arch.build_module's
    keys = ("name", "encoder", "in_channels") if key == "init_model" else ("encoder", "in_channels")
    theirs, ours = ({k: str(a.get(k, default[k])).lower() for k in keys} for a in (card.architecture, arch))
    if theirs != ours:
        diff = ", ".join(f"{k} {theirs[k]} there, {ours[k]} here" for k in keys if theirs[k] != ours[k])
        raise ConfigError(f"train.{key} {src!r} does not match the architecture being trained ({diff}); start from "
                          "a model of the same architecture")


def check_experiment(cfg: dict[str, Any], resuming: bool = False) -> None:
    """Raise a one-line :class:`ConfigError` for a value ``fit`` cannot train with (checked before any data is read;
    ``resuming``: a run that goes on from its ``last.pt``, whose start weights are no longer read).
    A number given as text at a float setting (YAML's ``5e-4``) is replaced by the number."""
    _check_sections(cfg)
    _read_number_text(cfg)
    fill_defaults(cfg)
    t, d = cfg["train"], cfg["data"]
    _check_train_options(t)
    for key in (*_POSITIVE_INTS, "gsd_range", "lr"):
        if key not in t:
            raise ConfigError(f"train.{key} is missing; see configs/scinet_r18_buildings.toml")
    for key in _POSITIVE_INTS:
        if not (_whole(t[key]) and t[key] >= 1):
            raise ConfigError(f"train.{key} must be a whole number >= 1, not {t[key]!r}")
    if t["chip_size"] % 32:
        raise ConfigError(f"train.chip_size must be a multiple of 32 (the models' output stride), not {t['chip_size']}")
    g = t["gsd_range"]
    if not (isinstance(g, list) and len(g) == 2 and all(_positive(v) for v in g) and g[0] <= g[1]):
        raise ConfigError(f"train.gsd_range must be [finest, coarsest] in metres, both > 0, not {g!r}")
    if not (_number(t["lr"]) and t["lr"] >= 0):  # 0 freezes the weights (a dry run of the data path)
        raise ConfigError(f"train.lr must be a number >= 0, not {t['lr']!r}")
    shift = t.get("color_shift", 0)
    if not (_whole(shift) and 0 <= shift <= 255):
        raise ConfigError(f"train.color_shift must be grey levels 0-255 (0: off), not {shift!r}")
    acc = t.get("accumulate", 1)
    if not (_whole(acc) and acc >= 1):
        raise ConfigError(f"train.accumulate must be a whole number of batches per step >= 1, not {acc!r}")
    if t.get("loss", "bce_dice") not in LOSS_NAMES:
        raise ConfigError(f"train.loss must be {' or '.join(LOSS_NAMES)} (the building channel's loss), not {t['loss']!r}")
    for flag in ("freeze_bn", "deterministic"):
        if not isinstance(t.get(flag, False), bool):
            raise ConfigError(f"train.{flag} must be true or false, not {t[flag]!r}")
    every = t.get("checkpoint_every_s", 600)
    if not (_number(every) and every >= 0):
        raise ConfigError(f"train.checkpoint_every_s must be seconds >= 0 (0: after every step), not {every!r}")
    _check_outputs(t, cfg["architecture"])
    _check_device(t)
    _check_bands(cfg)
    if shift and cfg["architecture"].get("in_channels", 3) != 3:
        raise ConfigError("train.color_shift shifts red, green and blue: it needs in_channels = 3; set it to 0")
    if not _positive(d.get("base_gsd_m")):
        raise ConfigError(f"data.base_gsd_m must be a GSD in metres > 0, not {d.get('base_gsd_m')!r}")
    if not d.get("train"):
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
    _check_finest(d, g, t["chip_size"])
    for i, e in enumerate(d.get("val", [])):
        gsds = e.get("gsd_m") if isinstance(e, dict) else None
        gsds = gsds if isinstance(gsds, list) else [gsds]
        if not isinstance(e, dict) or "labels" not in e or not ({"raster", "raster_glob"} & set(e)) \
                or not all(_positive(v) for v in gsds):
            raise ConfigError(f"data.val[{i}] needs labels, raster (or raster_glob) and gsd_m (one GSD or a list), "
                              "e.g. { raster = \"v.tif\", labels = \"v.gpkg\", gsd_m = [0.15, 0.3] }")
        _check_aoi(f"data.val[{i}]", e)
    if not resuming:  # the weights to start from matter to a fresh run only
        _check_init(t, cfg["architecture"])  # last: it reads the model registry


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
    if not (_whole(n) and n >= 1):
        raise ConfigError(f"architecture.in_channels must be a whole number of bands >= 1, not {n!r}")
    norm = cfg.get("normalization")
    if norm is not None:
        for key in ("mean", "std"):
            v = norm.get(key) if isinstance(norm, dict) else None
            if not (isinstance(v, list) and len(v) == n and all(_number(x) for x in v)):
                raise ConfigError(f"normalization.{key} must list {n} numbers (one per band of in_channels = {n}), "
                                  f"not {v!r}")
        if not all(_positive(x) for x in norm["std"]):
            raise ConfigError(f"normalization.std must be > 0 for every band, not {norm['std']!r}")
    for section in ("train", "val"):
        for i, e in enumerate(cfg["data"].get(section, [])):
            b = e.get("bands") if isinstance(e, dict) else None
            if b is not None and not (isinstance(b, list) and len(b) == n and all(_whole(x) and x >= 1 for x in b)):
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


MIN_CROP = 8  # source pixels: the smallest window geoseg.train.chips.ChipSampler.sample_with_gsd upsamples to a chip


def _check_finest(d: dict[str, Any], gsd_range: list[float], chip_size: int) -> None:
    """No entry is asked for chips finer than it can make: a chip is at least :data:`MIN_CROP` pixels of the entry's
    base grid, so its GSD is at least ``MIN_CROP * base_gsd_m / chip_size``; finer ones would come out at that GSD
    while the card advertised the range."""
    for i, e in enumerate(d["train"]):
        lo, hi = gsd_range
        if "chip_gsd_m" in e:
            lo, hi = max(lo, e["chip_gsd_m"][0]), min(hi, e["chip_gsd_m"][1])
        if lo > hi:  # serves no chip of the range
            continue
        base = e.get("base_gsd_m", d["base_gsd_m"])
        finest = MIN_CROP * base / chip_size
        if lo >= finest * (1 - 1e-9):
            continue
        least = _round_up(finest)
        base_key = f"data.train[{i}].base_gsd_m" if "base_gsd_m" in e else "data.base_gsd_m"
        fix = (f"raise the low end of its chip_gsd_m to {least:g} or more" if "chip_gsd_m" in e and lo > gsd_range[0]
               else f"raise the low end of train.gsd_range to {least:g} or more")
        raise ConfigError(f"data.train[{i}] cannot make chips finer than {least:g} m ({MIN_CROP} pixels of its {base:g} m "
                          f"base grid on a {chip_size} px chip) but is asked for {lo:g} m; {fix} (or lower {base_key})")


def _round_up(x: float, digits: int = 4) -> float:
    """``x`` rounded up to ``digits`` significant digits: a bound a message gives that is never below ``x``."""
    shown = float(f"{x:.{digits}g}")
    if shown >= x:
        return shown
    step = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return float(f"{shown + step:.{digits}g}")


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    """An int or a finite float (inf and nan train all-NaN weights), not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive(v: Any) -> bool:
    return _number(v) and v > 0


def entry_bands(entry: dict) -> tuple[int, ...] | None:
    """An entry's ``bands`` (1-based, in order) as a tuple, or None (then the bands ``geoseg segment`` picks)."""
    return tuple(int(b) for b in entry["bands"]) if "bands" in entry else None
