import os

import pytest
from hypothesis import HealthCheck, settings

# Its checks (one_line, check_roundtrip...) report their operands as a test file's own asserts do.
pytest.register_assert_rewrite("tests.helpers")

import plada_codec  # noqa: E402

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# PLADA_BACKEND=python forces every backend-parametrised test onto numpy too,
# which is how CI reruns the suite on the pure path.
if os.environ.get("PLADA_BACKEND", "auto") == "python":
    BACKENDS = ["python"]
else:
    BACKENDS = list(plada_codec.available_backends())
    if os.environ.get("PLADA_REQUIRE_C") == "1" and "c" not in BACKENDS:
        raise RuntimeError("PLADA_REQUIRE_C=1 but the C core is not built")


def pytest_configure(config):
    # Registered here, beside the tests that use it (pyproject.toml lists only the gpu marker).
    config.addinivalue_line("markers", "codec: a codec test; scripts/sanitize.sh runs every file that sets "
                                       "pytestmark = pytest.mark.codec under ASan/UBSan")


@pytest.fixture(params=BACKENDS, scope="session")
def backend(request):
    """Every codec test runs once per available backend."""
    return request.param


@pytest.fixture(scope="session")
def kernels(backend):
    from plada_codec._backend import get_kernels

    return get_kernels(backend)
