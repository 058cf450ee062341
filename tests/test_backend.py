import subprocess
import sys

import plada_codec


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
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent / "plada_train"
    for path in root.glob("*.py"):
        private = re.findall(r"plada_codec\.(_(?!_)\w+)|from plada_codec\.(\w+)", path.read_text())
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
