"""Format 1.1's joint context-model codec, decoded from spec/FORMAT.md section 15 alone.

The companion of educational_decoder.py: stdlib only, no numpy, no import of
plada_codec, slow on purpose (one Python statement per step of the spec).
It turns the raw body of an index section with codec 2 (`context-model`)
into the k indices and the k labels, or raises DecodeError with the error
class of FORMAT.md 9.1 (15.10: FormatError, or UnsupportedFeature for an
unknown preset).

    decode_cm_body(raw, k, n_ref, c) -> (indices, labels)

Pass a list as *trace* to receive one (what, bit, model, bound) tuple per
modelled decision, in the order of FORMAT.md Appendix B.

    encode_cm_body(indices, labels, n_ref, c, preset) -> raw body

is the range encoder of 15.8, also from the spec alone: the tests hold it to
plada_codec's bytes, which shows that 15.8's canonical choice is specified.
"""

from __future__ import annotations


class DecodeError(Exception):
    """Carries the spec's error class name (FORMAT.md 9.1)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def fail(kind: str, message: str):
    raise DecodeError(kind, message)


# 15.2: preset -> (slots, mantissa_bits, average_shift, rate_limit)
PRESETS = {
    0: (4, 2, 2, 60),  # clustered
    1: (0, 3, 4, 255),  # flat
}

# 15.3: RATE[n] = 131072 // (2n + 3), about 1/(n + 1.5) in units of 2^-16
RATE = [131072 // (2 * n + 3) for n in range(256)]


def raw_length_bounds(k: int, n_ref: int, c: int) -> tuple[int, int]:
    """15.1: index / context-model carries max(1, ceil(k / 8)) <= raw_length <= 5 + 136 k bytes."""
    return max(1, (k + 7) // 8), 5 + 136 * k


class Models:
    """An array of adaptive binary models (15.3): prob of a 0 in 2^-16 units, update count."""

    def __init__(self, size: int, rate_limit: int) -> None:
        self.prob = [32768] * size
        self.count = [0] * size
        self.rate_limit = rate_limit

    def update(self, i: int, bit: int) -> None:
        rate = RATE[self.count[i]]
        if bit == 0:
            self.prob[i] += ((65536 - self.prob[i]) * rate) >> 16
        else:
            self.prob[i] -= (self.prob[i] * rate) >> 16
        if self.count[i] < self.rate_limit:
            self.count[i] += 1


class RangeDecoder:
    """15.4: code and range below 2^32; reads zeros past the end of the stream."""

    def __init__(self, stream: bytes, trace: list | None = None) -> None:
        self.stream, self.trace = stream, trace
        self.code = self.byte(0) << 24 | self.byte(1) << 16 | self.byte(2) << 8 | self.byte(3)
        self.pos = 4
        self.range = 0xFFFFFFFF
        if self.code >= self.range:
            fail("FormatError", "the stream starts FF FF FF FF")

    def byte(self, i: int) -> int:
        return self.stream[i] if i < len(self.stream) else 0

    def normalize(self) -> None:
        while self.range < 2**24:
            self.range <<= 8
            self.code = (self.code << 8) | self.byte(self.pos)
            self.pos += 1

    def bit(self, models: Models, i: int, what: str = "") -> int:
        bound = (self.range >> 16) * models.prob[i]
        if self.code < bound:
            self.range, bit = bound, 0
        else:
            self.code -= bound
            self.range -= bound
            bit = 1
        if self.trace is not None:
            self.trace.append((what, bit, i, bound))
        models.update(i, bit)
        self.normalize()
        return bit

    def uniform(self, n: int) -> int:
        share = self.range // n
        value = self.code // share
        if value >= n:
            fail("FormatError", "raw value overflows its width")
        self.code -= value * share
        self.range = share
        self.normalize()
        return value

    def raw(self, nbits: int) -> int:
        value = 0
        while nbits > 0:
            chunk = min(nbits, 16)
            nbits -= chunk
            value = (value << chunk) | self.uniform(1 << chunk)
        return value


def gap_class(length: int) -> int:
    """15.6: the bit length L of the gap, in six classes."""
    if length <= 3:
        return length - 1
    return 3 if length <= 5 else 4 if length <= 8 else 5


def decode_cm_body(raw: bytes, k: int, n_ref: int, c: int, trace: list | None = None):
    """The raw body of index codec 2 -> (indices, labels), or DecodeError (15.2 - 15.7)."""
    # 15.2
    if not raw:
        fail("FormatError", "empty context-model body")
    if raw[0] not in PRESETS:
        fail("UnsupportedFeature", f"unknown context-model preset {raw[0]}")
    slots, mantissa_bits, average_shift, rate_limit = PRESETS[raw[0]]
    stream = raw[1:]
    max_length = n_ref.bit_length()
    label_bits = (c - 1).bit_length()
    tree_bits = min(label_bits, 6)
    low_bits = label_bits - tree_bits
    slots_used = min(slots, c)
    # 15.3: every model fresh for each body
    lengths = Models(64 * 98, rate_limit)
    mantissa = Models(50 << mantissa_bits, rate_limit)
    flags = Models(600, rate_limit)
    tree = Models(64, rate_limit)
    rc = RangeDecoder(stream, trace)

    indices, labels = [], []
    prev = -1
    average = (n_ref // max(k, 1)).bit_length() << 4
    mtf = list(range(slots_used))  # 15.6 move-to-front list
    recent: list[int] = []
    run = 0
    for _ in range(k):
        # 15.5: the bit length L of v = index - prev, coded outward from the prediction
        gap_context = min(average >> 3, 63)
        predicted = max(1, min((average + 8) >> 4, max_length))
        base = 98 * gap_context
        if predicted > 1 and rc.bit(lengths, base, f"L < {predicted}?") == 1:
            length = predicted - 1
            while length > 1 and rc.bit(lengths, base + length, f"L < {length}?") == 1:
                length -= 1
        else:
            length = predicted
            while length < max_length and rc.bit(lengths, base + 49 + length, f"L > {length}?") == 1:
                length += 1
        modelled = min(mantissa_bits, length - 1)
        rest = length - 1 - modelled
        node = 1
        for _ in range(modelled):
            node = 2 * node + rc.bit(mantissa, (length << mantissa_bits) + node, "mantissa")
        v = (node << rest) | rc.raw(rest)
        index = prev + v
        if index >= n_ref:
            fail("FormatError", "index >= N")
        prev = index
        average = (average * ((1 << average_shift) - 1) + (length << 4)) >> average_shift
        indices.append(index)

        # 15.6: the label, through the move-to-front flags, else the tree
        g = gap_class(length)
        run_class = min(run.bit_length(), 4)
        hit = None
        for s in range(slots_used):
            if s == slots_used - 1 and slots_used == c:
                hit = s  # the only label left: not coded
                break
            seen = recent.count(mtf[s])
            flag_ctx = ((s * 6 + g) * 5 + run_class) * 5 + seen
            if rc.bit(flags, flag_ctx, f"slot {s}?") == 1:
                hit = s
                break
        if hit is not None:
            label = mtf[hit]
        else:
            node = 1
            for _ in range(tree_bits):
                node = 2 * node + rc.bit(tree, node, "tree")
            label = ((node - (1 << tree_bits)) << low_bits) | rc.raw(low_bits)
            if label >= c:
                fail("FormatError", "label >= C")
            if label in mtf:
                fail("FormatError", "non-canonical: a label in the list coded in full")
            hit = slots_used - 1
        if slots_used > 0:
            run = run + 1 if recent and recent[-1] == label else 1
            del mtf[hit]
            mtf.insert(0, label)
        recent.append(label)
        if len(recent) > 4:
            del recent[0]
        labels.append(label)

    # 15.7: termination and canonical form
    size = len(stream)
    if size > rc.pos:
        fail("FormatError", "the stream holds bytes that were never read")
    if size > 0:
        last = stream[size - 1]
        if last == 0:
            fail("FormatError", "non-canonical: trailing zero byte")
        shift = rc.pos - size
        if shift < 4:
            unit = 1 << (8 * shift)
            if not (rc.code < unit and rc.code + (256 - last) * unit >= rc.range):
                fail("FormatError", "non-canonical: not the shortest, smallest stream")
    return indices, labels


# -- the encoder of 15.8 (informative there, except its canonical choice) ---------------------
# Not needed to decode; it shows that 15.8's "an encoder MUST produce exactly these bytes" is
# specified completely: the tests require these bytes to equal plada_codec's.


class RangeEncoder:
    """15.8: LZMA's carry-propagating range encoder."""

    def __init__(self) -> None:
        self.low, self.range, self.cache, self.cache_size = 0, 0xFFFFFFFF, 0, 1
        self.out = bytearray()

    def shift_low(self) -> None:
        if self.low % 2**32 < 0xFF000000 or self.low >= 2**32:
            carry = self.low >> 32
            self.out.append((self.cache + carry) % 256)
            self.out += bytes([(0xFF + carry) % 256]) * (self.cache_size - 1)
            self.cache_size = 0
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def normalize(self) -> None:
        while self.range < 2**24:
            self.range <<= 8
            self.shift_low()

    def bit(self, models: Models, i: int, bit: int) -> int:
        bound = (self.range >> 16) * models.prob[i]
        if bit:
            self.low += bound
            self.range -= bound
        else:
            self.range = bound
        models.update(i, bit)
        self.normalize()
        return bit

    def uniform(self, value: int, n: int) -> None:
        share = self.range // n
        self.low += value * share
        self.range = share
        self.normalize()

    def raw(self, value: int, nbits: int) -> None:
        while nbits > 0:
            chunk = min(nbits, 16)
            nbits -= chunk
            self.uniform((value >> nbits) & ((1 << chunk) - 1), 1 << chunk)

    def finish(self) -> bytes:
        for j in range(5):
            unit = 2 ** (8 * (4 - j))
            v = -(-self.low // unit) * unit
            if v < self.low + self.range:
                break
        self.low = v
        for _ in range(5):
            self.shift_low()
        return bytes(self.out[1:]).rstrip(b"\x00")


def encode_cm_body(indices: list[int], labels: list[int], n_ref: int, c: int, preset: int) -> bytes:
    """(indices, labels) -> the raw body of index codec 2 with *preset*: 15.5 and 15.6 coded by 15.8."""
    slots, mantissa_bits, average_shift, rate_limit = PRESETS[preset]
    k = len(indices)
    max_length = n_ref.bit_length()
    label_bits = (c - 1).bit_length()
    tree_bits = min(label_bits, 6)
    low_bits = label_bits - tree_bits
    slots_used = min(slots, c)
    lengths = Models(64 * 98, rate_limit)
    mantissa = Models(50 << mantissa_bits, rate_limit)
    flags = Models(600, rate_limit)
    tree = Models(64, rate_limit)
    rc = RangeEncoder()
    prev = -1
    average = (n_ref // max(k, 1)).bit_length() << 4
    mtf = list(range(slots_used))
    recent: list[int] = []
    run = 0
    for index, label in zip(indices, labels):
        v = index - prev
        length = v.bit_length()
        gap_context = min(average >> 3, 63)
        predicted = max(1, min((average + 8) >> 4, max_length))
        base = 98 * gap_context
        if predicted > 1 and rc.bit(lengths, base, int(length < predicted)):
            current = predicted - 1
            while current > 1 and rc.bit(lengths, base + current, int(length < current)):
                current -= 1
        else:
            current = predicted
            while current < max_length and rc.bit(lengths, base + 49 + current, int(length > current)):
                current += 1
        modelled = min(mantissa_bits, length - 1)
        rest = length - 1 - modelled
        node = 1
        for shift in range(length - 2, rest - 1, -1):  # the modelled bits below the leading 1
            node = 2 * node + rc.bit(mantissa, (length << mantissa_bits) + node, (v >> shift) & 1)
        rc.raw(v & ((1 << rest) - 1), rest)
        prev = index
        average = (average * ((1 << average_shift) - 1) + (length << 4)) >> average_shift

        g = gap_class(length)
        run_class = min(run.bit_length(), 4)
        hit = mtf.index(label) if label in mtf else None
        for s in range(slots_used):
            if s == slots_used - 1 and slots_used == c:
                break
            seen = recent.count(mtf[s])
            if rc.bit(flags, ((s * 6 + g) * 5 + run_class) * 5 + seen, int(s == hit)):
                break
        if hit is None:
            node = 1
            top = label >> low_bits
            for level in range(tree_bits - 1, -1, -1):
                node = 2 * node + rc.bit(tree, node, (top >> level) & 1)
            rc.raw(label & ((1 << low_bits) - 1), low_bits)
            hit = slots_used - 1
        if slots_used > 0:
            run = run + 1 if recent and recent[-1] == label else 1
            del mtf[hit]
            mtf.insert(0, label)
        recent.append(label)
        if len(recent) > 4:
            del recent[0]
    return bytes([preset]) + rc.finish()
