"""The library and format versions each have one source, and what users read agrees with it."""

import re
from importlib import metadata

import pytest

import plada_codec
from tests.helpers import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = REPO


def test_installed_distribution_reports_the_package_version():
    # pip's metadata is produced from pyproject.toml at install time, independently of the import.
    assert metadata.version("plada") == plada_codec.__version__


def test_pyproject_takes_the_version_from_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "plada_codec._version.__version__"


def test_format_version_matches_the_spec_title():
    text = (ROOT / "spec" / "FORMAT.md").read_text(encoding="utf-8")
    match = re.search(r"\*\*Format version (\d+)\.(\d+)\*\*", text)
    assert match, "spec/FORMAT.md must open with its format version"
    assert plada_codec.FORMAT_VERSION == f"{match[1]}.{match[2]}"
    assert (plada_codec.FORMAT_MAJOR, plada_codec.FORMAT_MINOR) == (int(match[1]), int(match[2]))
