"""MkDocs hook: a public name without a docstring is a warning, so ``mkdocs build --strict`` fails.

The public API is ``plada_codec.__all__`` and ``plada_train``'s ``_EXPORTS`` table (the names
``plada_train`` imports on first use). Both are read statically with griffe, as mkdocstrings
reads them: neither package is imported, so torch is not needed to build the site.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import griffe

log = logging.getLogger("mkdocs.hooks.docstrings")
ROOT = Path(__file__).resolve().parents[2]

# Public names that had no docstring when this check was added. Each should get one; then its
# line goes. A name listed here that has a docstring is reported (as info) so the list shrinks.
KNOWN_MISSING: set[str] = set()


def _target(obj):
    return obj.final_target if obj.is_alias else obj


def _train_exports() -> dict[str, list[str]]:
    tree = ast.parse((ROOT / "plada_train" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets):
                return ast.literal_eval(node.value)
    raise RuntimeError("plada_train/__init__.py has no _EXPORTS table")


def public_objects():
    """Yield (public name, griffe object) for every public name of both packages."""
    codec = griffe.load("plada_codec", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)
    for name in codec.exports or []:
        yield f"plada_codec.{name}", _target(codec[name])
    train = griffe.load("plada_train", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)
    for module, names in _train_exports().items():
        for name in names:
            yield f"plada_train.{name}", _target(train[f"{module}.{name}"])


def on_pre_build(config, **kwargs) -> None:
    checked = 0
    for public, obj in public_objects():
        if obj.is_attribute:
            continue  # constants and version strings: documented in prose
        checked += 1
        if obj.docstring is None and obj.path not in KNOWN_MISSING:
            log.warning("public name %s (%s) has no docstring", public, obj.path)
        elif obj.docstring is not None and obj.path in KNOWN_MISSING:
            log.info("%s has a docstring now: remove it from KNOWN_MISSING in docs/_hooks/docstrings.py", obj.path)
    log.info("docstrings: %d public names checked", checked)
