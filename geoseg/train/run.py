"""Train from an experiment and optionally export a model card: what ``geoseg train`` and ``geoseg.train_model`` do."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from geoseg.errors import ConfigError


def train_experiment(config: str | Path | dict[str, Any], out_dir: str | Path | None = None,
                     export_dir: str | Path | None = None, card_extra: str | Path | dict | None = None,
                     int8: bool = False, show_progress=False, train_command: str | None = None) -> dict[str, Path]:
    """Train ``config`` (an experiment file, TOML or YAML, or its parsed dict) into ``out_dir`` (default
    ``runs/<name>``), resuming from its last checkpoint; then, with ``export_dir``, export the best checkpoint as
    weights + model card (``card_extra``: card fields, a dict or a JSON file). ``show_progress``: True for a progress
    bar, or a :class:`geoseg.progress.Progress`. ``train_command``: how the run was started, for the card's
    ``train_command`` unless ``card_extra`` gives one. Returns ``{"best": ..., "card": ...}``."""
    from geoseg.train.experiment import check_experiment, load_experiment
    from geoseg.train.fit import fit

    if not all(map(_installed, ("albumentations", "cv2"))):
        raise ConfigError("training needs the training extras: pip install 'geoseg[train]'")
    cfg = config if isinstance(config, dict) else load_experiment(config)
    check_experiment(cfg, resuming=True)  # the name makes the run folder; fit checks the rest again, knowing more
    extra = card_extra_from(card_extra)  # before training: a bad card file must not cost a run
    if train_command and "train_command" not in extra:
        extra["train_command"] = train_command
        extra.setdefault("train_cwd", os.getcwd())  # where its relative paths (config, data) are read from
    if isinstance(card_extra, dict):
        from geoseg.models.card import card_field_problem

        problem = card_field_problem(extra)
        if problem:
            raise ConfigError(f"card fields: {problem}")
    from geoseg.io.atomic import check_output_dir

    if export_dir is not None:
        check_output_dir(Path(export_dir), f"--export {export_dir}")
    out = Path(out_dir or Path("runs") / cfg["name"])
    check_output_dir(out, f"the run folder {out}")
    if export_dir is not None:
        from geoseg.train.export import card_fields, check_export_target

        card_fields(cfg, extra)  # a card that would not load, or would replace another model: refused before training
        check_export_target(Path(export_dir), cfg)
    result = {"best": fit(cfg, out, show_progress=show_progress)}
    if export_dir is not None:
        from geoseg.train.export import export

        result["card"] = export(result["best"], Path(export_dir), extra, "int8" if int8 else "fp16")
    return result


def card_extra_from(card_extra: str | Path | dict | None) -> dict:
    if card_extra is None or isinstance(card_extra, dict):
        return dict(card_extra or {})
    path = Path(card_extra)
    if not path.is_file():
        raise ConfigError(f"card fields file not found: {path}; check the path")
    try:
        extra = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(extra, dict):
        raise ConfigError(f"{path} must hold a JSON object of card fields, e.g. {{\"gsd_m\": 0.3}}")
    from geoseg.models.card import card_field_problem

    problem = card_field_problem(extra)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return extra


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (albumentations looks for updates online at import)."""
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ValueError:  # in sys.modules as None: blocked
        return False
