/* plada_core.c: bit packing, index-delta, bitmap and label kernels.
 * Contracts are in plada_core.h; the numpy twins in
 * plada_codec/_kernels_py.py are the executable reference. */
#include "plada_core.h"

#include <string.h>

#define PLADA_BLOCK 128

#if defined(__GNUC__) || defined(__clang__)
#define PLADA_INLINE static inline __attribute__((always_inline))
#else
#define PLADA_INLINE static inline
#endif

PLADA_INLINE uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

PLADA_INLINE void store_le64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

PLADA_INLINE uint64_t width_mask(unsigned width)
{
    return width >= 64 ? ~UINT64_C(0) : ((UINT64_C(1) << width) - 1);
}

static size_t packed_size(size_t count, unsigned width)
{
    /* count <= SIZE_MAX / 64 is assumed by callers (counts come from buffers). */
    return (size_t)(((uint64_t)count * width + 7) / 8);
}

/* Read width bits at bit position bitpos, touching only bytes that hold them. */
static uint64_t read_bits_slow(const uint8_t *src, uint64_t bitpos, unsigned width)
{
    uint64_t value = 0;
    unsigned got = 0;
    while (got < width) {
        unsigned shift = (unsigned)(bitpos & 7);
        unsigned take = 8 - shift;
        if (take > width - got)
            take = width - got;
        uint64_t bits = (uint64_t)((src[bitpos >> 3] >> shift) & ((1u << take) - 1));
        value |= bits << got;
        got += take;
        bitpos += take;
    }
    return value;
}

/* Value j of a group of 8 starting at byte p; reads bytes p .. p + (j*W>>3) + 8. */
PLADA_INLINE uint64_t group_value(const uint8_t *p, unsigned j, unsigned width)
{
    unsigned bit = j * width;
    unsigned shift = bit & 7;
    const uint8_t *q = p + (bit >> 3);
    uint64_t v = load_le64(q) >> shift;
    if (shift + width > 64)
        v |= (uint64_t)q[8] << (64 - shift);
    return v & width_mask(width);
}

/* Unpack with width known at compile time once inlined into a switch case:
 * groups of 8 values are exactly `width` bytes, so offsets and shifts fold to
 * constants. Groups whose 9-byte over-read would pass src_len take the slow
 * reader, so no byte outside src is ever read. */
PLADA_INLINE void unpack_fixed(const uint8_t *src, size_t src_len, size_t count,
                               unsigned width, uint64_t *out)
{
    size_t i = 0;
    const size_t reach = ((7 * (size_t)width) >> 3) + 9;
    for (; i + 8 <= count; i += 8) {
        const uint8_t *p = src + (i / 8) * width;
        if ((size_t)(p - src) + reach > src_len)
            break;
        for (unsigned j = 0; j < 8; j++)
            out[i + j] = group_value(p, j, width);
    }
    for (; i < count; i++)
        out[i] = read_bits_slow(src, (uint64_t)i * width, width);
}

#define PLADA_W8(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
#define PLADA_ALL_WIDTHS(X) PLADA_W8(X) \
    X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) \
    X(23) X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31) X(32) X(33) X(34) X(35) X(36) \
    X(37) X(38) X(39) X(40) X(41) X(42) X(43) X(44) X(45) X(46) X(47) X(48) X(49) X(50) \
    X(51) X(52) X(53) X(54) X(55) X(56) X(57) X(58) X(59) X(60) X(61) X(62) X(63) X(64)

static void unpack_any(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                       uint64_t *out)
{
    switch (width) {
    case 0:
        memset(out, 0, count * sizeof *out);
        return;
#define PLADA_CASE(W) case W: unpack_fixed(src, src_len, count, W, out); return;
    PLADA_ALL_WIDTHS(PLADA_CASE)
#undef PLADA_CASE
    default:
        return;
    }
}

int plada_unpack_bits(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                      uint64_t *out, plada_error *err)
{
    if (width > 64)
        return plada_fail(err, PLADA_ERR_ARG, 0, 64, width);
    size_t need = packed_size(count, width);
    if (src_len < need)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, need, src_len);
    unpack_any(src, src_len, count, width, out);
    return PLADA_OK;
}

/* Bit writer: appends values LSB-first, flushing whole 64-bit words. */
typedef struct bit_writer {
    uint8_t *out;
    size_t pos;
    uint64_t acc;
    unsigned filled;
} bit_writer;

PLADA_INLINE void writer_put(bit_writer *w, uint64_t value, unsigned width)
{
    if (width == 0)
        return;
    w->acc |= value << w->filled;
    if (w->filled + width >= 64) {
        store_le64(w->out + w->pos, w->acc);
        w->pos += 8;
        w->acc = w->filled ? value >> (64 - w->filled) : 0;
        w->filled = w->filled + width - 64;
    } else {
        w->filled += width;
    }
}

PLADA_INLINE void writer_flush(bit_writer *w)
{
    for (unsigned b = 0; b < w->filled; b += 8) {
        w->out[w->pos++] = (uint8_t)(w->acc & 0xff);
        w->acc >>= 8;
    }
    w->filled = 0;
    w->acc = 0;
}

/* A word is stored only once all 64 of its bits are data bits, so every
 * store lands inside the ceil(count*width/8) bytes the caller provides. */
static void pack_unchecked(const uint64_t *values, size_t count, unsigned width, uint8_t *out)
{
    bit_writer w = {out, 0, 0, 0};
    for (size_t i = 0; i < count; i++)
        writer_put(&w, values[i], width);
    writer_flush(&w);
}

int plada_pack_bits(const uint64_t *values, size_t count, unsigned width, uint8_t *out,
                    size_t out_len, plada_error *err)
{
    if (width > 64)
        return plada_fail(err, PLADA_ERR_ARG, 0, 64, width);
    size_t need = packed_size(count, width);
    if (out_len < need)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, need, out_len);
    if (width < 64) {
        for (size_t i = 0; i < count; i++)
            if (values[i] >> width)
                return plada_fail(err, PLADA_ERR_VALUE, i, width, 0);
    }
    if (need)
        memset(out, 0, need);
    pack_unchecked(values, count, width, out);
    return PLADA_OK;
}

static unsigned bit_length(uint64_t v)
{
    return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
}

size_t plada_delta_bound(size_t count)
{
    return (count + PLADA_BLOCK - 1) / PLADA_BLOCK + 8 * count;
}

int plada_delta_encode(const int64_t *indices, size_t count, uint8_t *out, size_t out_cap,
                       size_t *out_len, plada_error *err)
{
    size_t n_blocks = (count + PLADA_BLOCK - 1) / PLADA_BLOCK;
    if (out_cap < n_blocks)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, n_blocks, out_cap);
    uint64_t gaps[PLADA_BLOCK];
    size_t pos = n_blocks;
    int64_t prev = -1;
    for (size_t b = 0; b < n_blocks; b++) {
        size_t start = b * PLADA_BLOCK;
        size_t n = count - start < PLADA_BLOCK ? count - start : PLADA_BLOCK;
        uint64_t any = 0;
        for (size_t j = 0; j < n; j++) {
            int64_t idx = indices[start + j];
            if (idx <= prev)
                return plada_fail(err, PLADA_ERR_ARG, start + j, 0, 0);
            /* unsigned: prev = -1 wraps to UINT64_MAX, so the first gap is idx itself */
            gaps[j] = (uint64_t)idx - (uint64_t)prev - 1u;
            any |= gaps[j];
            prev = idx;
        }
        unsigned width = bit_length(any);
        size_t size = packed_size(n, width);
        if (pos + size > out_cap)
            return plada_fail(err, PLADA_ERR_LENGTH, 0, pos + size, out_cap);
        out[b] = (uint8_t)width;
        memset(out + pos, 0, size);
        pack_unchecked(gaps, n, width, out + pos);
        pos += size;
    }
    *out_len = pos;
    return PLADA_OK;
}

int plada_delta_decode(const uint8_t *src, size_t src_len, size_t count, uint64_t n_ref,
                       int64_t *out, plada_error *err)
{
    size_t n_full = count / PLADA_BLOCK, n_last = count % PLADA_BLOCK;
    size_t n_blocks = n_full + (n_last ? 1 : 0);
    if (src_len < n_blocks)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, n_blocks, src_len);
    uint64_t expected = n_blocks;
    for (size_t b = 0; b < n_blocks; b++) {
        unsigned width = src[b];
        if (width > 64)
            return plada_fail(err, PLADA_ERR_WIDTH, b, 64, width);
        expected += b < n_full ? (uint64_t)width * (PLADA_BLOCK / 8) : packed_size(n_last, width);
    }
    if (expected != src_len)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, expected, src_len);
    if (n_last) {
        unsigned width = src[n_full];
        unsigned used = (unsigned)((n_last * width) % 8);
        if (used && (src[src_len - 1] >> used))
            return plada_fail(err, PLADA_ERR_PADDING, n_full, 0, 0);
    }
    uint64_t gaps[PLADA_BLOCK];
    uint64_t prev = UINT64_MAX; /* prev + 1 + gap wraps to gap for the first entry */
    size_t pos = n_blocks;
    for (size_t b = 0; b < n_blocks; b++) {
        unsigned width = src[b];
        size_t n = b < n_full ? PLADA_BLOCK : n_last;
        size_t size = packed_size(n, width);
        unpack_any(src + pos, size, n, width, gaps);
        pos += size;
        int64_t *dst = out + b * PLADA_BLOCK;
        for (size_t j = 0; j < n; j++) {
            uint64_t gap = gaps[j];
            /* prev < n_ref <= 2**48 and gap < n_ref, so the sum cannot wrap. */
            if (gap >= n_ref)
                return plada_fail(err, PLADA_ERR_RANGE, b * PLADA_BLOCK + j, n_ref, 0);
            uint64_t idx = prev + 1 + gap;
            if (idx >= n_ref)
                return plada_fail(err, PLADA_ERR_RANGE, b * PLADA_BLOCK + j, n_ref, 0);
            dst[j] = (int64_t)idx;
            prev = idx;
        }
    }
    return PLADA_OK;
}

int plada_bitmap_encode(const int64_t *indices, size_t count, uint64_t n_ref, uint8_t *out,
                        size_t out_len, plada_error *err)
{
    uint64_t need = (n_ref + 7) / 8;
    if (out_len != need)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, need, out_len);
    memset(out, 0, out_len);
    for (size_t i = 0; i < count; i++) {
        int64_t idx = indices[i];
        if (idx < 0 || (uint64_t)idx >= n_ref)
            return plada_fail(err, PLADA_ERR_ARG, i, n_ref, 0);
        out[idx >> 3] |= (uint8_t)(1u << (idx & 7));
    }
    return PLADA_OK;
}

int plada_bitmap_decode(const uint8_t *src, size_t src_len, size_t count, uint64_t n_ref,
                        int64_t *out, plada_error *err)
{
    uint64_t need = (n_ref + 7) / 8;
    if (src_len != need)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, need, src_len);
    unsigned used = (unsigned)(n_ref % 8);
    if (used && (src[src_len - 1] >> used))
        return plada_fail(err, PLADA_ERR_PADDING, 0, 0, 0);
    size_t words = src_len / 8;
    uint64_t total = 0;
    for (size_t w = 0; w < words; w++)
        total += (uint64_t)__builtin_popcountll(load_le64(src + 8 * w));
    for (size_t b = words * 8; b < src_len; b++)
        total += (uint64_t)__builtin_popcount(src[b]);
    if (total != count)
        return plada_fail(err, PLADA_ERR_COUNT, 0, count, total);
    size_t o = 0;
    for (size_t w = 0; w < words; w++) {
        uint64_t bits = load_le64(src + 8 * w);
        while (bits) {
            out[o++] = (int64_t)(8 * w * 8 + (unsigned)__builtin_ctzll(bits));
            bits &= bits - 1;
        }
    }
    for (size_t b = words * 8; b < src_len; b++) {
        unsigned bits = src[b];
        while (bits) {
            out[o++] = (int64_t)(8 * b + (unsigned)__builtin_ctz(bits));
            bits &= bits - 1;
        }
    }
    return PLADA_OK;
}

/* Labels: same grouped unpack as unpack_fixed, straight into int32 with the
 * range check folded in (width <= 32 here). */
PLADA_INLINE int labels_fixed(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                              uint32_t n_classes, int32_t *out, size_t *bad)
{
    size_t i = 0;
    const size_t reach = ((7 * (size_t)width) >> 3) + 9;
    for (; i + 8 <= count; i += 8) {
        const uint8_t *p = src + (i / 8) * width;
        if ((size_t)(p - src) + reach > src_len)
            break;
        uint32_t worst = 0;
        for (unsigned j = 0; j < 8; j++) {
            uint32_t v = (uint32_t)group_value(p, j, width);
            out[i + j] = (int32_t)v;
            worst = v > worst ? v : worst;
        }
        if (worst >= n_classes) {
            for (unsigned j = 0; j < 8; j++)
                if ((uint32_t)out[i + j] >= n_classes) {
                    *bad = i + j;
                    return 1;
                }
        }
    }
    for (; i < count; i++) {
        uint32_t v = (uint32_t)read_bits_slow(src, (uint64_t)i * width, width);
        out[i] = (int32_t)v;
        if (v >= n_classes) {
            *bad = i;
            return 1;
        }
    }
    return 0;
}

int plada_labels_decode(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                        uint32_t n_classes, int32_t *out, plada_error *err)
{
    if (width > 32)
        return plada_fail(err, PLADA_ERR_ARG, 0, 32, width);
    size_t need = packed_size(count, width);
    if (src_len != need)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, need, src_len);
    unsigned used = (unsigned)(((uint64_t)count * width) % 8);
    if (used && (src[src_len - 1] >> used))
        return plada_fail(err, PLADA_ERR_PADDING, 0, 0, 0);
    size_t bad = 0;
    int found = 0;
    switch (width) {
    case 0:
        memset(out, 0, count * sizeof *out);
        found = n_classes == 0 && count > 0;
        break;
#define PLADA_CASE(W) case W: found = labels_fixed(src, src_len, count, W, n_classes, out, &bad); break;
    PLADA_W8(PLADA_CASE)
    PLADA_CASE(9) PLADA_CASE(10) PLADA_CASE(11) PLADA_CASE(12) PLADA_CASE(13) PLADA_CASE(14)
    PLADA_CASE(15) PLADA_CASE(16) PLADA_CASE(17) PLADA_CASE(18) PLADA_CASE(19) PLADA_CASE(20)
    PLADA_CASE(21) PLADA_CASE(22) PLADA_CASE(23) PLADA_CASE(24) PLADA_CASE(25) PLADA_CASE(26)
    PLADA_CASE(27) PLADA_CASE(28) PLADA_CASE(29) PLADA_CASE(30) PLADA_CASE(31) PLADA_CASE(32)
#undef PLADA_CASE
    default:
        break;
    }
    if (found)
        return plada_fail(err, PLADA_ERR_LABEL, bad, n_classes, (uint64_t)(uint32_t)out[bad]);
    return PLADA_OK;
}
