"""Goal files: a TOML/YAML file or a dict -> a validated :class:`gdo.selection.goal.Goal`.

A goal file may name a ``base`` preset (:mod:`gdo.selection.presets`) and override only what
differs; this module is the one place that joins the two (so that ``goal`` and ``presets`` do not
import each other).
"""

from __future__ import annotations

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package (issue 12 item 13)
    import tomli as tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gdo.selection.goal import Goal, GoalError, _format_validation_error
from gdo.selection.presets import get_preset


def goal_from_dict(data: dict[str, Any], where: str = "goal") -> Goal:
    """Build a validated goal from a dict; ``base`` (a preset name) supplies defaults.

    Raises:
        GoalError: unknown key, wrong type, value out of range, min above max, unknown base.
    """
    if not isinstance(data, dict):
        raise GoalError(f"{where}: a goal must be a mapping of keys to values, got {type(data).__name__}")
    data = dict(data)
    base = data.pop("base", None)
    merged: dict[str, Any] = {}
    if base is not None:
        try:
            merged = get_preset(str(base)).model_dump()
        except KeyError as e:
            raise GoalError(f"{where}: base: {e.args[0]}") from None
        merged["name"] = data.get("name", f"{base}_custom")
    merged.update(data)
    if isinstance(merged.get("goal_set"), str):
        merged["goal_set"] = (merged["goal_set"],)
    if isinstance(merged.get("temporal_categories"), str):
        merged["temporal_categories"] = tuple(s.strip() for s in merged["temporal_categories"].split(",") if s.strip())
    try:
        return Goal(**merged)
    except ValidationError as e:
        msg = _format_validation_error(e, where)
        if base is None and any(err.get("type") == "missing" for err in e.errors()):
            msg = (f"{where}: no `base` preset, so every parameter must be given; add e.g. "
                   f"base = \"temp_plus\" and override only what differs ({msg})")
        raise GoalError(msg) from None


def load_goal(path: str | Path) -> Goal:
    """Read a goal from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file.

    Raises:
        GoalError: unreadable or unparsable file, or an invalid goal (see :func:`goal_from_dict`).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise GoalError(f"{p}: cannot read goal file: {e}") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw.decode("utf-8"))
        else:
            raise GoalError(f"{p}: goal files must end in .toml, .yaml or .yml")
    except GoalError:
        raise
    except Exception as e:  # parse errors of either format carry line numbers in their text
        raise GoalError(f"{p}: cannot parse goal file: {e}") from None
    if data is None:
        data = {}
    if isinstance(data, dict) and "goal" in data and isinstance(data["goal"], dict) and len(data) == 1:
        data = data["goal"]
    if isinstance(data, dict) and data.get("goal_set") is not None:
        gsv = data["goal_set"]
        gsv = [gsv] if isinstance(gsv, str) else gsv
        if isinstance(gsv, list) and all(isinstance(x, str) for x in gsv):
            data = dict(data)
            data["goal_set"] = tuple(str(p.parent / x) if not Path(x).is_absolute() else x for x in gsv)
    return goal_from_dict(data, where=str(p))
