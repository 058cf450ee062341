"""Format 1.1 joint context-model codec, pure Python: the executable reference.

This module is the readable twin of the C kernels ``plada_cm_encode`` /
``plada_cm_decode`` in ``csrc/plada_cm.c`` (wrapped by ``_kernels_c``); both
produce identical bytes and raise identical errors, and spec/FORMAT.md
section 15 ("Joint context-model codec") describes exactly what is coded
here. It favours clarity over speed: one Python call per binary decision.

What goes on the wire (the index section body, codec 2; the label section
then has codec 2 and an empty body):

    body = preset_id (1 byte)  range-coded stream of the k (gap, label) pairs

For every pair the stream holds, in order: the bit length ``L`` of
``v = gap + 1`` in unary (adaptive bits, context = smoothed average of recent
lengths), the top mantissa bits below the leading one (adaptive, per length),
the remaining mantissa bits raw; then the label, as "is it the label in
move-to-front slot s?" flags (context: slot, this gap's length class, the run
of the latest label, how often the slot's label occurred among the last four)
and, on a miss, an adaptive binary tree over the label's top bits plus raw
low bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._status import Status, raise_cm

# -- the binary range coder (spec 15.4) --------------------------------------
PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS  # probabilities are of a 0 bit, in units of 2**-16
PROB_INIT = PROB_ONE // 2
RANGE_INIT = 0xFFFFFFFF
RANGE_TOP = 1 << 24  # range is renormalised to stay >= 2**24
RAW_CHUNK = 16  # raw values are coded in chunks of at most 16 bits
# Adaptation rate after n updates of a model: about 1/(n + 1.5), in 2**-16 units.
RATE = tuple((2 << PROB_BITS) // (2 * n + 3) for n in range(256))

# -- model layout (spec 15.3) --------------------------------------------------
MAX_GAP_BITS = 49  # v = gap + 1 <= N <= 2**48 has at most 49 bits
AVERAGE_FRACTION_BITS = 4  # the running average of L is kept in 1/16 units
GAP_CONTEXTS = 64
LENGTH_MODELS = 2 * MAX_GAP_BITS  # per context: "below?", steps down, steps up
GAP_CLASSES = 6  # length classes of the current gap, for the label flags
RUN_CLASSES = 5
RECENT = 4  # labels remembered for the "how often among the last four" context
TREE_BITS = 6  # adaptive top levels of the label tree; lower bits are raw

MAX_SLOTS = 4


@dataclass(frozen=True)
class Preset:
    """Parameters a body selects with its first byte (spec 15.2)."""

    id: int
    name: str
    slots: int  # move-to-front slots with "is it this one?" flags (0: tree only)
    mantissa_bits: int  # mantissa bits below the leading one that are modelled
    average_shift: int  # the gap-length average moves 2**-shift of the way per gap
    rate_limit: int  # update count at which a model's rate stops slowing


PRESETS = {
    0: Preset(0, "clustered", slots=4, mantissa_bits=2, average_shift=2, rate_limit=60),
    1: Preset(1, "flat", slots=0, mantissa_bits=3, average_shift=4, rate_limit=255),
}


def gap_class(length: int) -> int:
    """Length class of a gap for the label contexts: 1, 2, 3, 4-5, 6-8, 9+."""
    return (0, 0, 1, 2, 3, 3, 4, 4, 4)[length] if length <= 8 else 5


def run_class(run: int) -> int:
    return min(run.bit_length(), RUN_CLASSES - 1)


class _Models:
    """A bank of adaptive binary models: probability of a 0 and update count."""

    def __init__(self, size: int, rate_limit: int) -> None:
        self.prob = [PROB_INIT] * size
        self.count = [0] * size
        self.rate_limit = rate_limit

    def update(self, i: int, bit: int) -> None:
        rate = RATE[self.count[i]]
        if bit:
            self.prob[i] -= (self.prob[i] * rate) >> 16
        else:
            self.prob[i] += ((PROB_ONE - self.prob[i]) * rate) >> 16
        if self.count[i] < self.rate_limit:
            self.count[i] += 1


class RangeEncoder:
    """LZMA-style carry-propagating range encoder with canonical termination."""

    def __init__(self) -> None:
        self.low = 0  # up to 33 bits: the top bit is a pending carry
        self.range = RANGE_INIT
        self.cache = 0
        self.cache_size = 1
        self.out = bytearray()

    def _shift_low(self) -> None:
        if (self.low & 0xFFFFFFFF) < 0xFF000000 or self.low >> 32:
            carry = self.low >> 32
            self.out.append((self.cache + carry) & 0xFF)
            self.out.extend(bytes([(0xFF + carry) & 0xFF]) * (self.cache_size - 1))
            self.cache_size = 0
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def _normalize(self) -> None:
        while self.range < RANGE_TOP:
            self.range <<= 8
            self._shift_low()

    def bit(self, models: _Models, i: int, bit: int) -> None:
        bound = (self.range >> PROB_BITS) * models.prob[i]
        if bit:
            self.low += bound
            self.range -= bound
        else:
            self.range = bound
        models.update(i, bit)
        self._normalize()

    def uniform(self, value: int, n: int) -> None:
        """Code *value* in [0, n), n <= 2**16, all values equally likely."""
        share = self.range // n
        self.low += value * share
        self.range = share
        self._normalize()

    def raw(self, value: int, nbits: int) -> None:
        """Code the low *nbits* of *value*, most significant 16-bit chunk first."""
        while nbits > 0:
            chunk = min(nbits, RAW_CHUNK)
            nbits -= chunk
            self.uniform((value >> nbits) & ((1 << chunk) - 1), 1 << chunk)

    def finish(self) -> bytes:
        """Pick the canonical value in the final interval and flush it.

        The canonical value is the smallest multiple of 256**(4-j) in
        [low, low + range) for the smallest j in 0..4; written out, its
        trailing zero bytes are dropped (a decoder reads zeros past the end).
        """
        for j in range(5):
            unit = 1 << (8 * (4 - j))
            value = -(-self.low // unit) * unit
            if value < self.low + self.range:
                break
        self.low = value
        for _ in range(5):
            self._shift_low()
        # The first byte is the carry out of an interval that starts below
        # 2**32, so it is always 0 and is not sent.
        assert self.out[0] == 0
        return bytes(self.out[1:]).rstrip(b"\x00")


class RangeDecoder:
    """Decoder twin of :class:`RangeEncoder`; bytes past the end read as 0."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 4  # bytes shifted into the 32-bit window so far
        self.code = int.from_bytes(data[:4].ljust(4, b"\x00"), "big")
        self.range = RANGE_INIT
        if self.code >= self.range:
            raise_cm(Status.START, 0, 0, self.code)

    def _next_byte(self) -> int:
        pos = self.pos
        self.pos += 1
        return self.data[pos] if pos < len(self.data) else 0

    def _normalize(self) -> None:
        while self.range < RANGE_TOP:
            self.range <<= 8
            self.code = (self.code << 8) | self._next_byte()

    def bit(self, models: _Models, i: int) -> int:
        bound = (self.range >> PROB_BITS) * models.prob[i]
        if self.code < bound:
            self.range = bound
            bit = 0
        else:
            self.code -= bound
            self.range -= bound
            bit = 1
        models.update(i, bit)
        self._normalize()
        return bit

    def uniform(self, n: int, entry: int) -> int:
        share = self.range // n
        value = self.code // share
        if value >= n:
            raise_cm(Status.CODED, entry, n, value)
        self.code -= value * share
        self.range = share
        self._normalize()
        return value

    def raw(self, nbits: int, entry: int) -> int:
        value = 0
        while nbits > 0:
            chunk = min(nbits, RAW_CHUNK)
            nbits -= chunk
            value = (value << chunk) | self.uniform(1 << chunk, entry)
        return value

    def check_end(self, count: int) -> None:
        """Reject unread or non-canonical trailing bytes (spec 15.7)."""
        size, pos = len(self.data), self.pos
        if size > pos:
            raise_cm(Status.TRAILING, count, pos, size)
        if size == 0:
            return
        last = self.data[size - 1]
        shift = pos - size  # bytes between the last body byte and the window's end
        if last == 0:
            raise_cm(Status.END, count, 0, 0)
        if shift < 4:
            unit = 1 << (8 * shift)
            if self.code >= unit or self.code + (256 - last) * unit < self.range:
                raise_cm(Status.END, count, 0, 0)


# -- the pair model (spec 15.3, 15.5, 15.6) ------------------------------------------


class _PairModel:
    """Contexts and models shared by encoder and decoder; the coder is passed in."""

    def __init__(self, preset: Preset, n_ref: int, count: int, n_classes: int) -> None:
        self.preset = preset
        self.n_classes = n_classes
        self.max_length = n_ref.bit_length()
        limit = preset.rate_limit
        self.lengths = _Models(GAP_CONTEXTS * LENGTH_MODELS, limit)
        self.mantissa = _Models((MAX_GAP_BITS + 1) << preset.mantissa_bits, limit)
        self.flags = _Models(MAX_SLOTS * GAP_CLASSES * RUN_CLASSES * (RECENT + 1), limit)
        self.tree = _Models(1 << TREE_BITS, limit)
        self.label_bits = (n_classes - 1).bit_length()
        self.tree_bits = min(self.label_bits, TREE_BITS)
        self.slots_used = min(preset.slots, n_classes)
        self.slots = list(range(self.slots_used))  # move-to-front list, initially 0, 1, ...
        self.recent: list[int] = []  # the last RECENT labels, newest last
        self.run = 0
        self.average = (n_ref // max(count, 1)).bit_length() << AVERAGE_FRACTION_BITS

    def gap_context(self) -> int:
        return min(self.average >> (AVERAGE_FRACTION_BITS - 1), GAP_CONTEXTS - 1)

    def predicted_length(self) -> int:
        """The average rounded to a whole length, within [1, max_length]."""
        half = 1 << (AVERAGE_FRACTION_BITS - 1)
        return max(1, min((self.average + half) >> AVERAGE_FRACTION_BITS, self.max_length))

    def after_gap(self, length: int) -> None:
        shift = self.preset.average_shift
        self.average = (self.average * ((1 << shift) - 1) + (length << AVERAGE_FRACTION_BITS)) >> shift

    def flag_context(self, slot: int, length: int) -> int:
        label = self.slots[slot]
        recent = sum(1 for x in self.recent if x == label)
        ctx = (slot * GAP_CLASSES + gap_class(length)) * RUN_CLASSES + run_class(self.run)
        return ctx * (RECENT + 1) + recent

    def after_label(self, label: int, slot: int) -> None:
        """Move *label* (found in *slot*, or slot = slots_used - 1 on a miss) to the front."""
        if self.slots_used:
            self.run = self.run + 1 if self.recent and self.recent[-1] == label else 1
            del self.slots[slot]
            self.slots.insert(0, label)
        self.recent.append(label)
        if len(self.recent) > RECENT:
            del self.recent[0]


def encode(indices, labels, n_ref: int, n_classes: int, preset_id: int) -> bytes:
    """The codec-2 index body (preset byte + stream) for sorted distinct
    *indices* in [0, n_ref) and *labels* in [0, n_classes)."""
    preset = PRESETS[preset_id]
    indices = np.asarray(indices, dtype=np.int64).tolist()
    labels = np.asarray(labels, dtype=np.int64).tolist()
    m = _PairModel(preset, n_ref, len(indices), n_classes)
    rc = RangeEncoder()
    prev = -1
    for index, label in zip(indices, labels):
        v = index - prev
        prev = index
        length = v.bit_length()
        _encode_length(rc, m, length)
        modelled = min(preset.mantissa_bits, length - 1)
        rest = length - 1 - modelled
        node = 1
        for b in range(modelled - 1, -1, -1):
            bit = (v >> (rest + b)) & 1
            rc.bit(m.mantissa, (length << preset.mantissa_bits) + node, bit)
            node = 2 * node + bit
        rc.raw(v, rest)
        m.after_gap(length)
        _encode_label(rc, m, label, length)
    return bytes([preset_id]) + rc.finish()


def _encode_length(rc: RangeEncoder, m: _PairModel, length: int) -> None:
    """Unary outward from the predicted length p: "L < p?", then "L < t?" for
    t = p-1, p-2, ... 2, or "L > t?" for t = p, p+1, ... max_length-1."""
    base = m.gap_context() * LENGTH_MODELS
    p = m.predicted_length()
    below = length < p
    if p > 1:
        rc.bit(m.lengths, base, int(below))
    if below:
        for t in range(p - 1, 1, -1):
            rc.bit(m.lengths, base + t, int(length < t))
            if length == t:
                break
    else:
        for t in range(p, m.max_length):
            rc.bit(m.lengths, base + MAX_GAP_BITS + t, int(length > t))
            if length == t:
                break


def _encode_label(rc: RangeEncoder, m: _PairModel, label: int, length: int) -> None:
    slot = 0
    while slot < m.slots_used:
        if slot == m.slots_used - 1 and m.slots_used == m.n_classes:
            break  # the last possible label: nothing to code
        hit = m.slots[slot] == label
        rc.bit(m.flags, m.flag_context(slot, length), int(hit))
        if hit:
            break
        slot += 1
    else:
        low_bits = m.label_bits - m.tree_bits
        high = label >> low_bits
        node = 1
        for b in range(m.tree_bits - 1, -1, -1):
            bit = (high >> b) & 1
            rc.bit(m.tree, node, bit)
            node = 2 * node + bit
        rc.raw(label, low_bits)
        slot = m.slots_used - 1
    m.after_label(label, slot)


def decode(body, count: int, n_ref: int, n_classes: int):
    """Decode a codec-2 index body into (int64 indices, int32 labels)."""
    body = bytes(body)
    if not body:
        raise_cm(Status.EMPTY, 0, 1, 0)
    preset = PRESETS.get(body[0])
    if preset is None:
        raise_cm(Status.PRESET, 0, len(PRESETS), body[0])
    m = _PairModel(preset, n_ref, count, n_classes)
    rc = RangeDecoder(body[1:])
    indices = np.empty(count, dtype=np.int64)
    labels = np.empty(count, dtype=np.int32)
    prev = -1
    for entry in range(count):
        length = _decode_length(rc, m)
        modelled = min(preset.mantissa_bits, length - 1)
        rest = length - 1 - modelled
        node = 1
        for _ in range(modelled):
            node = 2 * node + rc.bit(m.mantissa, (length << preset.mantissa_bits) + node)
        v = (node << rest) | rc.raw(rest, entry)
        index = prev + v
        if index >= n_ref:
            raise_cm(Status.RANGE, entry, n_ref, index)
        indices[entry] = prev = index
        m.after_gap(length)
        labels[entry] = _decode_label(rc, m, length, entry)
    rc.check_end(count)
    return indices, labels


def _decode_length(rc: RangeDecoder, m: _PairModel) -> int:
    base = m.gap_context() * LENGTH_MODELS
    p = m.predicted_length()
    if p > 1 and rc.bit(m.lengths, base):
        length = p - 1
        while length > 1 and rc.bit(m.lengths, base + length):
            length -= 1
    else:
        length = p
        while length < m.max_length and rc.bit(m.lengths, base + MAX_GAP_BITS + length):
            length += 1
    return length


def _decode_label(rc: RangeDecoder, m: _PairModel, length: int, entry: int) -> int:
    slot = 0
    while slot < m.slots_used:
        if slot == m.slots_used - 1 and m.slots_used == m.n_classes:
            break
        if rc.bit(m.flags, m.flag_context(slot, length)):
            break
        slot += 1
    else:
        low_bits = m.label_bits - m.tree_bits
        node = 1
        for _ in range(m.tree_bits):
            node = 2 * node + rc.bit(m.tree, node)
        label = ((node - (1 << m.tree_bits)) << low_bits) | rc.raw(low_bits, entry)
        if label >= m.n_classes:
            raise_cm(Status.LABEL, entry, m.n_classes, label)
        if label in m.slots:
            raise_cm(Status.CANONICAL, entry, 1, label)
        slot = m.slots_used - 1
        m.after_label(label, slot)
        return label
    label = m.slots[slot]
    m.after_label(label, slot)
    return label
