import pytest

# battery.py's checks report their operands as a test file's own asserts do.
pytest.register_assert_rewrite("tests.codec.codecs.battery")
