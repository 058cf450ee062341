import pytest

# battery.py's checks report their operands as a test file's own asserts do.
pytest.register_assert_rewrite("tests.codec.codecs.battery")


def pytest_generate_tests(metafunc):
    """A codec's ``TestBattery``: ``case`` runs over its ``cases``, ``hostile_case`` over the small
    ones of them (battery.small_cases), each shown by its name."""
    from tests.codec.codecs import battery

    cls = metafunc.cls
    if cls is None or not issubclass(cls, battery.Battery):
        return
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", cls.cases, ids=str)
    if "hostile_case" in metafunc.fixturenames:
        metafunc.parametrize("hostile_case", battery.small_cases(cls.codec, cls.cases), ids=str)

