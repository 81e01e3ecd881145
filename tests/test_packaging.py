"""The project's own files: dependency lists in step, no hard-coded devices, CI wiring."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda package names that differ from PyPI's


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = {_name(r) for r in project["dependencies"]}
    for extra in ("notebooks", "test", "batch", "peers"):
        pyproject |= {_name(r) for r in project["optional-dependencies"][extra]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda |= {_name(r) for r in dep.get("pip", []) if not r.startswith("-e")}
        else:
            conda.add(CONDA_TO_PIP.get(_name(dep), _name(dep)))
    conda -= {"python", "pip"}
    assert conda == pyproject, (
        f"only in environment.yml: {conda - pyproject}; only in pyproject.toml: {pyproject - conda}"
    )


HARDCODED_DEVICE = re.compile(r"""torch\.device\(\s*["']cuda|\.to\(\s*["']cuda|\.cuda\(\)|device\s*=\s*["']cuda""")


def test_no_hardcoded_cuda_outside_the_device_resolver():
    sources = [p for p in (ROOT / "perslib").rglob("*.py") if p.name != "runtime.py"]
    sources += list((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    offenders = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in sources
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if HARDCODED_DEVICE.search(line)
    ]
    assert not offenders, f"use perslib.resolve_device / device='auto' instead: {offenders}"


def test_ci_and_readme_use_the_two_commands():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    head = readme[:1500]  # the two commands come first
    assert "make run" in head and "make test" in head
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run:", "test:", "test-gpu:", "lab:"):
        assert re.search(rf"^{target}", makefile, re.M), target
