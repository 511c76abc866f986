"""Reading ``datasets_config.yml`` (the rules themselves are in domain.config)."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.domain.config import Config, parse_config
from pipeline.errors import ConfigError


def load_config(path: str | Path) -> Config:
    """Read and validate the datasets config; raises ConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the datasets config ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()
        bad_line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {bad_line} is not UTF-8 (byte 0x{raw[exc.start:exc.start + 1].hex()}); "
                          "save the datasets config as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{path.name}: not valid YAML{line}") from None
    return parse_config(raw, path)
