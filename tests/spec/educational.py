"""The spec's two educational programs, spec/educational_decoder.py and spec/educational_cm.py,
loaded from their files (they are standalone scripts, not a package), and how the spec tests
compare an outcome of the educational decoder with plada_codec's."""

import importlib.util

import plada_codec
from plada_codec._errors import SPEC_ERRORS
from tests.helpers import REPO

SPEC = REPO / "spec"
# FORMAT.md 12: the decoded content every valid vector's JSON records
CONTENT_KEYS = ("format_version", "n_ref", "n_classes", "count", "fingerprint", "indices", "labels",
                "class_names", "task_name", "metadata")


def load(name: str, filename: str):
    """spec/*filename* as a module called *name*."""
    spec = importlib.util.spec_from_file_location(name, SPEC / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


decoder = load("educational_decoder", "educational_decoder.py")
cm = load("educational_cm", "educational_cm.py")


def outcome_plada(data: bytes, backend: str):
    """plada_codec's decode of *data*: its content, or the name of the error class it raised."""
    try:
        return plada_codec.decode(data, backend=backend).to_dict()
    except plada_codec.PayloadError as exc:
        return type(exc).__name__


def outcome_spec(data: bytes):
    """The educational decoder's: its content, or the plada_codec class of its FORMAT.md 9.1 error."""
    try:
        return decoder.decode(data)
    except decoder.DecodeError as exc:
        return SPEC_ERRORS[exc.kind].__name__
