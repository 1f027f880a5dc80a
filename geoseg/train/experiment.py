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
