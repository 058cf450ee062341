"""read_payload reads the header first and refuses bad input before reading the rest."""

import io
import subprocess
import sys

import pytest

import plada_codec
from plada_codec import wire

PAYLOAD = plada_codec.encode([1, 4, 9], [0, 2, 1], n_ref=16, n_classes=3, task_name="t")

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


class CountingReader(io.RawIOBase):
    """A stream of *data* that records how many bytes were asked for and given."""

    def __init__(self, data: bytes, chunk: int | None = None) -> None:
        self._data = data
        self._pos = 0
        self._chunk = chunk  # at most this many bytes per read, like a pipe
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = len(buf) if self._chunk is None else min(len(buf), self._chunk)
        piece = self._data[self._pos : self._pos + n]
        buf[: len(piece)] = piece
        self._pos += len(piece)
        self.given += len(piece)
        return len(piece)


def test_reads_a_file_and_a_stream(tmp_path):
    path = tmp_path / "p.plada"
    path.write_bytes(PAYLOAD)
    assert plada_codec.read_payload(path) == PAYLOAD
    assert plada_codec.read_payload(str(path)) == PAYLOAD
    # Short reads (a pipe giving 7 bytes at a time) are collected up to total_length.
    assert plada_codec.read_payload(CountingReader(PAYLOAD, chunk=7)) == PAYLOAD


def test_stdin_dash():
    code = "import sys, plada_codec; sys.stdout.buffer.write(plada_codec.read_payload('-'))"
    result = subprocess.run([sys.executable, "-c", code], input=PAYLOAD, capture_output=True, check=True)
    assert result.stdout == PAYLOAD


def test_file_of_zeros_refused_after_the_header(tmp_path):
    reader = CountingReader(bytes(1 << 20))
    with pytest.raises(plada_codec.PayloadFormatError, match="bad magic"):
        plada_codec.read_payload(reader)
    assert reader.given == 80  # nothing past the header was read


def test_dev_zero_refused():
    with pytest.raises(plada_codec.PayloadFormatError, match="bad magic"):
        plada_codec.read_payload("/dev/zero")


def test_huge_declared_total_length_refused_before_reading_it():
    raw = wire.split(PAYLOAD)
    raw.total_length = 2**40
    data = wire.join(raw)
    reader = CountingReader(data)
    with pytest.raises(plada_codec.LimitExceededError, match="max_total_length"):
        plada_codec.read_payload(reader)
    assert reader.given == 80
    with pytest.raises(plada_codec.LimitExceededError):
        plada_codec.read_payload(io.BytesIO(PAYLOAD), max_total_length=len(PAYLOAD) - 1)
    assert plada_codec.read_payload(io.BytesIO(PAYLOAD), max_total_length=len(PAYLOAD)) == PAYLOAD


def test_header_checked_before_the_body():
    damaged = bytearray(PAYLOAD)
    damaged[20] ^= 1  # n_ref bit: header CRC fails
    reader = CountingReader(bytes(damaged))
    with pytest.raises(plada_codec.ChecksumError):
        plada_codec.read_payload(reader)
    assert reader.given == 80


def test_trailing_and_truncated(tmp_path):
    path = tmp_path / "p.plada"
    path.write_bytes(PAYLOAD + b"\x00" * (1 << 16))
    message = f"^65536 bytes follow the payload's end at offset {len(PAYLOAD)}$"
    with pytest.raises(plada_codec.TrailingDataError, match=message):
        plada_codec.read_payload(path)
    with pytest.raises(plada_codec.TrailingDataError, match="^7 bytes follow"):  # what decode() says
        plada_codec.read_payload(io.BytesIO(PAYLOAD + b"GARBAGE"))
    with pytest.raises(plada_codec.TrailingDataError, match="^7 bytes follow"):
        plada_codec.decode(PAYLOAD + b"GARBAGE")
    # an input longer than the limit is not counted to its end
    with pytest.raises(plada_codec.TrailingDataError, match=f"^more than {len(PAYLOAD) + 10} bytes follow"):
        plada_codec.read_payload(io.BytesIO(PAYLOAD + bytes(1 << 20)), max_total_length=len(PAYLOAD) + 10)
    with pytest.raises(plada_codec.TruncatedPayloadError):
        plada_codec.read_payload(io.BytesIO(PAYLOAD[:-1]))
    with pytest.raises(plada_codec.TruncatedPayloadError):
        plada_codec.read_payload(io.BytesIO(PAYLOAD[:50]))
    with pytest.raises(plada_codec.TruncatedPayloadError):
        plada_codec.read_payload(io.BytesIO(b""))


def test_text_stream_is_a_type_error():
    with pytest.raises(TypeError, match="binary mode"):
        plada_codec.read_payload(io.StringIO("PLADA"))


def test_a_stream_reader_reads_total_length_minus_80_more_bytes():
    data = plada_codec.encode([1, 2], [0, 1], n_ref=4, n_classes=2)

    class Counting:
        def __init__(self, raw):
            self.raw, self.asked = raw, []

        def read(self, n):
            self.asked.append(n)
            out, self.raw = self.raw[:n], self.raw[n:]
            return out

    source = Counting(data + b"x")
    with pytest.raises(plada_codec.TrailingDataError):
        plada_codec.read_payload(source)
    assert source.asked[:2] == [80, len(data) - 80]
    with pytest.raises(plada_codec.LimitExceededError, match="max_total_length"):
        plada_codec.read_payload(Counting(data), max_total_length=len(data) - 1)
