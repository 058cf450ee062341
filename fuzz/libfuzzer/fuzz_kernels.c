/* libFuzzer harness for the decode kernels of csrc/plada_core.c.
 *
 * Input layout (so the fuzzer can steer every parameter the Python layer
 * passes; all fields little-endian):
 *   byte 0       kernel: 0 unpack_bits, 1 delta_decode, 2 bitmap_decode, 3 labels_decode
 *   byte 1       width (unpack: mod 65 plus a few out-of-contract values; labels: mod 33)
 *   bytes 2..3   count (u16)
 *   bytes 4..11  n_ref (u64, masked to 49 bits, as the header allows at most 2^48)
 *                labels: bytes 4..7 are n_classes (u32)
 *   bytes 12..   src, the body the kernel reads
 * Output buffers are malloc'ed with exactly count elements, so AddressSanitizer
 * reports any write past them, and src is copied into its own allocation of
 * exactly src_len bytes so any read past it is reported too.
 *
 * Every result is checked against a bit-at-a-time reference written here from
 * spec/FORMAT.md sections 6.1-7.1 and the contracts in plada_core.h: same status,
 * and on success the same values, which must also satisfy the format's
 * invariants (indices strictly increasing and < n_ref, labels < n_classes,
 * bitmap population == count). Successful decodes are re-encoded with the
 * C encoders and must round-trip. Any disagreement aborts (a finding). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plada_core.h"

#define BLOCK 128

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "plada kernel invariant broken: %s (%s:%d): ", #cond,      \
                    __FILE__, __LINE__);                                                \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Stream bit s is bit s mod 8 of byte s / 8 (spec 6.1). */
static uint64_t ref_read(const uint8_t *src, uint64_t bitpos, unsigned width)
{
    uint64_t v = 0;
    for (unsigned b = 0; b < width; b++, bitpos++)
        v |= (uint64_t)((src[bitpos >> 3] >> (bitpos & 7)) & 1u) << b;
    return v;
}

static uint64_t packed(uint64_t count, unsigned width) { return (count * width + 7) / 8; }

static int padding_clean(const uint8_t *src, uint64_t len, uint64_t bits)
{
    for (uint64_t s = bits; s < 8 * len; s++)
        if ((src[s >> 3] >> (s & 7)) & 1u)
            return 0;
    return 1;
}

/* ---- unpack_bits ------------------------------------------------------- */
static void fuzz_unpack(const uint8_t *src, size_t len, size_t count, unsigned width)
{
    uint64_t *out = malloc((count ? count : 1) * sizeof *out);
    plada_error err;
    int status = plada_unpack_bits(src, len, count, width, out, &err);
    int want = width > 64 ? PLADA_ERR_ARG : len < packed(count, width) ? PLADA_ERR_LENGTH : PLADA_OK;
    CHECK(status == want, "unpack status %d, reference %d (count %zu width %u len %zu)",
          status, want, count, width, len);
    if (status == PLADA_OK) {
        for (size_t i = 0; i < count; i++) {
            uint64_t r = ref_read(src, (uint64_t)i * width, width);
            CHECK(out[i] == r, "value %zu is %llu, reference %llu (width %u)", i,
                  (unsigned long long)out[i], (unsigned long long)r, width);
        }
        /* Re-pack: must reproduce the packed bytes with padding cleared. */
        size_t need = packed(count, width);
        uint8_t *again = malloc(need ? need : 1);
        CHECK(plada_pack_bits(out, count, width, again, need, &err) == PLADA_OK, "re-pack failed");
        for (size_t s = 0; s < (uint64_t)count * width; s++)
            CHECK(((again[s >> 3] >> (s & 7)) & 1u) == ((src[s >> 3] >> (s & 7)) & 1u),
                  "re-pack differs at bit %zu", s);
        CHECK(padding_clean(again, need, (uint64_t)count * width), "re-pack wrote padding bits");
        free(again);
    }
    free(out);
}

/* ---- index-delta -------------------------------------------------------- */
/* Reference decode following spec 6.2 and the check order of plada_core.h. */
static int ref_delta(const uint8_t *src, size_t len, size_t count, uint64_t n_ref, int64_t *out)
{
    size_t nb = (count + BLOCK - 1) / BLOCK;
    if (len < nb)
        return PLADA_ERR_LENGTH;
    uint64_t need = nb;
    for (size_t b = 0; b < nb; b++) {
        if (src[b] > 64)
            return PLADA_ERR_WIDTH;
        size_t n = b + 1 < nb || count % BLOCK == 0 ? BLOCK : count % BLOCK;
        need += packed(n, src[b]);
    }
    if (need != len)
        return PLADA_ERR_LENGTH;
    uint64_t pos = nb;
    for (size_t b = 0; b < nb; b++) {
        size_t n = b + 1 < nb || count % BLOCK == 0 ? BLOCK : count % BLOCK;
        uint64_t size = packed(n, src[b]);
        if (b + 1 == nb && !padding_clean(src + pos, size, (uint64_t)n * src[b]))
            return PLADA_ERR_PADDING;
        pos += size;
    }
    pos = nb;
    uint64_t prev = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t n = b + 1 < nb || count % BLOCK == 0 ? BLOCK : count % BLOCK;
        for (size_t j = 0; j < n; j++) {
            uint64_t gap = ref_read(src + pos, (uint64_t)j * src[b], src[b]);
            if (gap >= n_ref)
                return PLADA_ERR_RANGE;
            uint64_t idx = (b == 0 && j == 0) ? gap : prev + 1 + gap;
            if (idx >= n_ref)
                return PLADA_ERR_RANGE;
            out[b * BLOCK + j] = (int64_t)idx;
            prev = idx;
        }
        pos += packed(n, src[b]);
    }
    return PLADA_OK;
}

static void check_sorted(const int64_t *v, size_t count, uint64_t n_ref)
{
    for (size_t i = 0; i < count; i++) {
        CHECK(v[i] >= 0 && (uint64_t)v[i] < n_ref, "index %zu = %lld not in [0, %llu)", i,
              (long long)v[i], (unsigned long long)n_ref);
        CHECK(i == 0 || v[i] > v[i - 1], "indices not strictly increasing at %zu", i);
    }
}

static void fuzz_delta(const uint8_t *src, size_t len, size_t count, uint64_t n_ref)
{
    size_t alloc = count ? count : 1;
    int64_t *out = malloc(alloc * sizeof *out), *ref = malloc(alloc * sizeof *ref);
    plada_error err;
    int status = plada_delta_decode(src, len, count, n_ref, out, &err);
    int want = ref_delta(src, len, count, n_ref, ref);
    CHECK(status == want, "delta status %d, reference %d (count %zu n_ref %llu len %zu)", status,
          want, count, (unsigned long long)n_ref, len);
    if (status == PLADA_OK) {
        CHECK(memcmp(out, ref, count * sizeof *out) == 0, "delta values differ from reference");
        check_sorted(out, count, n_ref);
        /* Re-encode (minimal widths) and decode again: same indices, and the
         * canonical body is never longer than the one decoded. */
        size_t cap = plada_delta_bound(count), got = 0;
        uint8_t *body = malloc(cap ? cap : 1);
        CHECK(plada_delta_encode(out, count, body, cap, &got, &err) == PLADA_OK, "re-encode failed");
        CHECK(got <= len, "canonical body %zu bytes, decoded one %zu", got, len);
        CHECK(plada_delta_decode(body, got, count, n_ref, ref, &err) == PLADA_OK, "re-decode failed");
        CHECK(memcmp(out, ref, count * sizeof *out) == 0, "delta round trip differs");
        free(body);
    }
    free(out);
    free(ref);
}

/* ---- bitmap --------------------------------------------------------------- */
static void fuzz_bitmap(const uint8_t *src, size_t len, size_t count, uint64_t n_ref)
{
    int64_t *out = malloc((count ? count : 1) * sizeof *out);
    plada_error err;
    int status = plada_bitmap_decode(src, len, count, n_ref, out, &err);
    int want;
    uint64_t pop = 0;
    if (len != (n_ref + 7) / 8)
        want = PLADA_ERR_LENGTH;
    else if (!padding_clean(src, len, n_ref))
        want = PLADA_ERR_PADDING;
    else {
        for (uint64_t i = 0; i < n_ref; i++)
            pop += (src[i >> 3] >> (i & 7)) & 1u;
        want = pop == count ? PLADA_OK : PLADA_ERR_COUNT;
    }
    CHECK(status == want, "bitmap status %d, reference %d (count %zu n_ref %llu len %zu)", status,
          want, count, (unsigned long long)n_ref, len);
    if (status == PLADA_ERR_COUNT)
        CHECK(err.actual == pop, "bitmap reports population %llu, actual %llu",
              (unsigned long long)err.actual, (unsigned long long)pop);
    if (status == PLADA_OK) {
        check_sorted(out, count, n_ref);
        for (size_t i = 0; i < count; i++)
            CHECK((src[out[i] >> 3] >> (out[i] & 7)) & 1u, "index %zu names a clear bit", i);
        uint8_t *again = malloc(len ? len : 1);
        CHECK(plada_bitmap_encode(out, count, n_ref, again, len, &err) == PLADA_OK, "re-encode failed");
        CHECK(memcmp(again, src, len) == 0, "bitmap round trip differs");
        free(again);
    }
    free(out);
}

/* ---- packed labels ---------------------------------------------------------- */
static void fuzz_labels(const uint8_t *src, size_t len, size_t count, unsigned width,
                        uint32_t n_classes)
{
    int32_t *out = malloc((count ? count : 1) * sizeof *out);
    plada_error err;
    int status = plada_labels_decode(src, len, count, width, n_classes, out, &err);
    int want = PLADA_OK;
    size_t bad = 0;
    if (width > 32)
        want = PLADA_ERR_ARG;
    else if (len != packed(count, width))
        want = PLADA_ERR_LENGTH;
    else if (!padding_clean(src, len, (uint64_t)count * width))
        want = PLADA_ERR_PADDING;
    else
        for (size_t i = 0; i < count; i++)
            if (ref_read(src, (uint64_t)i * width, width) >= n_classes) {
                want = PLADA_ERR_LABEL;
                bad = i;
                break;
            }
    CHECK(status == want, "labels status %d, reference %d (count %zu width %u C %u len %zu)",
          status, want, count, width, n_classes, len);
    if (status == PLADA_ERR_LABEL)
        CHECK(err.position == bad, "first bad label reported at %llu, reference %zu",
              (unsigned long long)err.position, bad);
    if (status == PLADA_OK)
        for (size_t i = 0; i < count; i++) {
            CHECK((uint32_t)out[i] < n_classes, "label %zu = %u not below C = %u", i,
                  (unsigned)out[i], n_classes);
            CHECK((uint64_t)(uint32_t)out[i] == ref_read(src, (uint64_t)i * width, width),
                  "label %zu differs from reference", i);
        }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 12)
        return 0;
    unsigned kernel = data[0] % 4;
    unsigned width_byte = data[1];
    size_t count = (size_t)le(data + 2, 2);
    uint64_t n_ref = le(data + 4, 8) & ((UINT64_C(1) << 49) - 1);
    if (n_ref == 0 || n_ref > (UINT64_C(1) << 48))
        n_ref = 1;
    size_t len = size - 12;
    /* Exact-size copy: ASan then flags any read past src_len. */
    uint8_t *src = malloc(len ? len : 1);
    memcpy(src, data + 12, len);
    switch (kernel) {
    case 0:
        /* Mostly in-contract widths, and now and then 65..255 to test ARG. */
        fuzz_unpack(src, len, count, width_byte < 195 ? width_byte % 65 : width_byte);
        break;
    case 1:
        fuzz_delta(src, len, count, n_ref);
        break;
    case 2:
        /* Bitmaps only decode when len == ceil(n_ref/8): usually derive n_ref
         * from len (low 3 bits of the width byte trim the last byte), else
         * keep the fuzzed n_ref to exercise the length check. */
        if (!(width_byte & 0x80) && len)
            n_ref = 8 * (uint64_t)len - (width_byte & 7);
        fuzz_bitmap(src, len, count, n_ref);
        break;
    default: {
        uint32_t n_classes = (uint32_t)le(data + 4, 4);
        unsigned width = width_byte < 200 ? width_byte % 33 : width_byte;
        /* Usually the width the format derives from C (bit_length(C - 1)). */
        if (width_byte & 0x40 && n_classes)
            for (width = 0; width < 32 && ((uint64_t)(n_classes - 1) >> width); width++)
                ;
        fuzz_labels(src, len, count, width, n_classes);
        break;
    }
    }
    free(src);
    return 0;
}
