import subprocess
import sys

import plada_codec
from tests.helpers import REPO


def _backend_with(env_value):
    code = "import plada_codec; print(plada_codec.backend)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PLADA_BACKEND": env_value, "PATH": ""})


def test_python_forced():
    result = _backend_with("python")
    assert result.returncode == 0 and result.stdout.strip() == "python"


def test_invalid_value_is_clear_import_error():
    result = _backend_with("fortran")
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "auto, c, python" in result.stderr


def test_auto_prefers_c_when_built():
    result = _backend_with("auto")
    assert result.stdout.strip() == ("c" if "c" in plada_codec.available_backends() else "python")


def test_codec_never_imports_torch():
    code = "import sys, plada_codec, plada_codec.cli, plada_codec.wire; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr


def test_train_uses_only_the_public_codec_api():
    import re

    root = REPO / "plada_train"
    for path in root.glob("*.py"):
        # Public modules (plada_codec.cli's exit codes, plada_codec.export) are API; private ones are not.
        private = re.findall(r"plada_codec\.(_(?!_)\w+)", path.read_text())
        assert not private, (path.name, private)


def test_unknown_backend_argument_is_a_payload_error_and_a_value_error():
    for call in (lambda: plada_codec.decode(plada_codec.encode([1], [0], n_ref=4, n_classes=2), backend="fortran"),
                 lambda: plada_codec.encode([1], [0], n_ref=4, n_classes=2, backend="fortran")):
        try:
            call()
        except plada_codec.UnknownBackendError as exc:
            assert isinstance(exc, plada_codec.PayloadError) and isinstance(exc, ValueError)
            assert "auto, c, python" in str(exc)
        else:
            raise AssertionError("an unknown backend was accepted")


def test_selection_rules_import_without_torch():
    # The codec-only environment (scripts/setup.sh --codec) has no torch; the numpy-only
    # selection rules and their tests must still load there.
    code = ("import sys; sys.modules['torch'] = None; import plada_train.selection as s; "
            "print(s.select(__import__('numpy').arange(4.0), [0, 1, 0, 1], n_classes=2, budget=2).indices.tolist())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[0, 1]", result.stderr


# -- the kernel object and the status table (issue 17 section 5) --------------------------

def test_each_backend_is_one_kernel_object_of_the_protocol(backend):
    """Every method the protocol lists, on the object the codecs receive, and nothing chosen elsewhere."""
    import inspect

    from plada_codec._backend import get_kernels
    from plada_codec._kernels import METHODS, Kernels

    kernels = get_kernels(backend)
    assert isinstance(kernels, Kernels) and kernels.name == backend
    declared = {name for name, _ in inspect.getmembers(Kernels, inspect.isfunction) if not name.startswith("_")}
    assert declared == set(METHODS)
    for name in METHODS:
        assert callable(getattr(kernels, name)), name
    # The context model comes with the object: the 1.1 codec asks nothing else.
    assert kernels.cm_decode(kernels.cm_encode([2, 3, 11], [4, 4, 1], 20, 5, 0), 3, 20, 5)[0].tolist() == [2, 3, 11]


def test_no_second_backend_choice_in_the_codecs():
    import pathlib

    root = pathlib.Path(plada_codec.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if path.name in ("_backend.py", "_kernels_c.py", "_kernels_py.py"):
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ('name == "c"', "name == 'c'", "import _kernels_c", "_cm_c"):
            assert needle not in text, (path.relative_to(root), needle)


def test_the_c_enum_and_the_status_table_agree():
    """csrc/plada_core.h's enum plada_status is plada_codec._status.Status, name for name, value for value."""
    import re

    from plada_codec._status import Status

    header = (REPO / "csrc" / "plada_core.h").read_text()
    body = header[header.index("typedef enum plada_status {"): header.index("} plada_status;")]
    declared = {name: int(value) for name, value in re.findall(r"PLADA_(?:ERR_)?(\w+) = (\d+)", body)}
    assert declared == {member.name: member.value for member in Status}


def test_every_status_a_kernel_can_report_has_a_row():
    from plada_codec._status import CM, KERNEL, Status, message

    for status in Status:
        if status in (Status.OK, Status.ARG):
            continue
        families = [CM] if status.value >= Status.CODED else [KERNEL, CM]
        for family in families:
            cls, text = message(status, "here", 3, 7, 9, family)
            assert issubclass(cls, plada_codec.PayloadError), (status, family)
            assert text.startswith("here: ") and "bug" not in text
    cls, text = message(Status.ARG, "here", 0, 0, 0)
    assert cls is AssertionError and "kernel status 8" in text


def test_both_backends_raise_the_same_row(backend):
    """15.4's start check and 15.7's end check are their own statuses now, with the messages of the table."""
    from plada_codec._backend import get_kernels

    kernels = get_kernels(backend)
    for body, fragment in ((b"\x00\xff\xff\xff\xff", "starts with code 0xffffffff"),
                           (b"\x00\xa1\x3a\x82\x00", "canonical termination"),
                           (b"", "the body is empty"),
                           (b"\x07", "preset 7 is unknown (this decoder knows 0..1)")):
        try:
            kernels.cm_decode(body, 3, 20, 5)
        except plada_codec.PayloadError as exc:
            assert fragment in str(exc), (body, str(exc))
        else:
            raise AssertionError(f"{body!r} decoded")


def test_the_built_c_core_is_not_older_than_its_sources():
    """A stale .so (csrc/ edited, not rebuilt) would test yesterday's C: rebuild with
    PLADA_REQUIRE_C=1 .venv/bin/pip install -e . --no-deps --no-build-isolation -q"""
    import os
    import pathlib

    import pytest

    if "c" not in plada_codec.available_backends():
        if os.environ.get("PLADA_REQUIRE_C") == "1":
            raise AssertionError("PLADA_REQUIRE_C=1 but the C core is not built")
        pytest.skip("the C core is not built")
    from plada_codec import _plada_core

    built = pathlib.Path(_plada_core.__file__).stat().st_mtime
    csrc = REPO / "csrc"
    sources = [p for p in csrc.iterdir() if p.suffix in (".c", ".h", ".py")]
    newer = [p.name for p in sources if p.stat().st_mtime > built]
    assert not newer, f"{_plada_core.__file__} is older than csrc/{', csrc/'.join(newer)}: rebuild it"
