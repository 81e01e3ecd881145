"""Parameters of a run: profiles, and values typed from the notebook's own defaults."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from perslib.reports._notebooks import ParameterError, notebook_parameters

__all__ = ["load_profile", "parse_parameter", "profile_name", "resolve_parameters"]

_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _untyped(text: str):
    """A value from text when the default says nothing about its type (``None``)."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lower() in {"none", "null", "~"}:
        return None
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    if text[:1] in "[{":
        return _structured(text)
    return text


def _structured(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return yaml.safe_load(text)


def parse_parameter(notebook: str, name: str, text: str, default):
    """Convert the command-line text of a parameter to the type of its default.

    ``int`` defaults take integers (``1e3`` is read as 1000), ``float`` defaults any
    number, ``bool`` defaults true/false/yes/no/1/0, ``str`` defaults keep the text as it
    is (``no`` stays ``"no"``), list and dict defaults take JSON or YAML of the same kind;
    ``None`` defaults take a number, ``null``, true/false, a list, or else the text.

    Raises
    ------
    ParameterError
        When the text cannot be read as the default's type; the message names the
        notebook, the parameter, the expected type and the default.
    """

    def fail(expected):
        raise ParameterError(f"parameter {name!r} of {notebook} expects {expected} (default {default!r}), got {text!r}")

    if isinstance(default, bool):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        fail("true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                fail("an integer")
            if not value.is_integer():
                fail("an integer")
            return int(value)
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            fail("a number")
    if isinstance(default, str):
        return text
    if default is None:
        return _untyped(text)
    if isinstance(default, (list, tuple, dict)):
        try:
            value = _structured(text)
        except yaml.YAMLError:
            value = None
        kind = dict if isinstance(default, dict) else (list, tuple)
        if not isinstance(value, kind):
            fail('a dict such as {"a": 1}' if kind is dict else "a list such as [1, 2]")
        return value
    return _untyped(text)


def _check_names(notebook: str, given: dict, known: dict, source: str) -> None:
    unknown = [k for k in given if k not in known]
    if unknown:
        names = ", ".join(unknown)
        raise ParameterError(
            f"{source} sets unknown parameter{'s' if len(unknown) > 1 else ''} {names} for {notebook}; "
            f"its parameters are: {', '.join(known)}"
        )


def _profile_sections(profile: str | Path, notebooks_dir: str | Path) -> dict:
    """The sections of a profile file: ``{"defaults": {...}, "<stem>": {...}, ...}``."""
    path = Path(profile)
    if not path.suffix:
        path = Path(notebooks_dir) / "params" / f"{profile}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (Path(notebooks_dir) / "params").glob("*.yaml"))
        raise ValueError(
            f"profile {str(profile)!r} not found (looked for {path}; available: {', '.join(available) or 'none'})"
        )
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"profile {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(content, dict) or not all(isinstance(v, dict) or v is None for v in content.values()):
        raise ValueError(f"profile {path} must map notebook names to parameter mappings")
    return {k: dict(v or {}) for k, v in content.items()}


def load_profile(profile: str | Path | None, stem: str, notebooks_dir: str | Path = "notebooks") -> dict:
    """Parameters of ``profile`` for the notebook ``stem``.

    ``profile`` is a name (``"smoke"``, ``"paper"`` → ``notebooks/params/<name>.yaml``) or
    a path to a YAML file. Its ``defaults`` section applies to every notebook; the
    section named ``stem`` overrides it. A missing or malformed profile raises a
    ``ValueError`` that names it.
    """
    if profile is None:
        return {}
    sections = _profile_sections(profile, notebooks_dir)
    return {**sections.get("defaults", {}), **sections.get(stem, {})}


def profile_name(profile) -> str:
    return "default" if profile is None else Path(str(profile)).stem


def resolve_parameters(path: str | Path, parameters: dict | None = None, profile: str | Path | None = None) -> dict:
    """The parameters a run of ``path`` injects: the profile's, then ``parameters``.

    String values of ``parameters`` are typed from the notebook's defaults
    (:func:`parse_parameter`); names the notebook does not have raise a
    :class:`ParameterError` that lists the notebook's parameters. Keys of a profile's
    ``defaults`` section that the notebook lacks are skipped; keys of its own section are
    checked like explicit parameters.
    """
    path = Path(path)
    known = notebook_parameters(path)
    resolved = {}
    if profile is not None:
        sections = _profile_sections(profile, path.parent)
        own = sections.get(path.stem, {})
        _check_names(path.stem, own, known, f"profile {profile_name(profile)!r}")
        resolved.update({k: v for k, v in sections.get("defaults", {}).items() if k in known})
        resolved.update(own)
    given = dict(parameters or {})
    _check_names(path.stem, given, known, "-p")
    for name, value in given.items():
        resolved[name] = parse_parameter(path.stem, name, value, known[name]) if isinstance(value, str) else value
    return resolved
