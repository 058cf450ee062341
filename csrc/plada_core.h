/* plada_core.h: the hot loops of the PLADA payload codecs.
 *
 * Python owns the format (plada_codec/_format.py); these functions only move
 * integers. Every function:
 *   - takes caller-allocated buffers with their lengths and never allocates;
 *   - reads untrusted bytes only within the lengths it is given;
 *   - returns PLADA_OK or one plada_status, filling *err with the first
 *     offending position and the two quantities that disagree, exactly as the
 *     numpy twin in plada_codec/_kernels_py.py reports them;
 *   - touches no Python object.
 * Bit order is LSB-first (spec/FORMAT.md, "Bit packing").
 *
 * The block between the CDEF markers is read verbatim by csrc/build_cffi.py
 * as the cffi cdef: keep it free of preprocessor lines.
 */
#ifndef PLADA_CORE_H
#define PLADA_CORE_H

#include <stddef.h>
#include <stdint.h>

/* CDEF BEGIN */
typedef enum plada_status {
    PLADA_OK = 0,
    PLADA_ERR_LENGTH = 1,   /* buffer length differs from what the codec implies */
    PLADA_ERR_WIDTH = 2,    /* a block declares a bit width above 64 */
    PLADA_ERR_PADDING = 3,  /* padding bits after the last value are not zero */
    PLADA_ERR_RANGE = 4,    /* a decoded index is >= n_ref */
    PLADA_ERR_LABEL = 5,    /* a decoded label is >= n_classes */
    PLADA_ERR_COUNT = 6,    /* bitmap population count differs from count */
    PLADA_ERR_VALUE = 7,    /* encoder: a value does not fit the width */
    PLADA_ERR_ARG = 8,      /* an argument outside the contract (a caller bug) */
    PLADA_ERR_CODED = 9,    /* context model: a raw value decodes outside its range */
    PLADA_ERR_TRAILING = 10, /* context model: bytes after the last one the decoder reads */
    PLADA_ERR_CANONICAL = 11, /* context model: a tree-coded label already in the move-to-front list */
    PLADA_ERR_PRESET = 12,  /* context model: no such preset (raised by the Python wrapper, listed here
                               so that this enum is the one list of statuses) */
    PLADA_ERR_START = 13,   /* context model: the first code is not below the initial range (15.4) */
    PLADA_ERR_END = 14,     /* context model: the stream does not end canonically (15.7) */
    PLADA_ERR_EMPTY = 15    /* context model: an empty body (raised by the Python wrapper) */
} plada_status;

typedef struct plada_error {
    uint64_t position;  /* first offending entry or block */
    uint64_t expected;
    uint64_t actual;
} plada_error;

/* Pack count values at width bits each (0..64), LSB-first, into out.
 * out_len must be at least ceil(count*width/8); the padding bits of the last
 * byte are written as zero. A value >= 2**width gives PLADA_ERR_VALUE with
 * err->position = its index; width > 64 gives PLADA_ERR_ARG. */
int plada_pack_bits(const uint64_t *values, size_t count, unsigned width,
                    uint8_t *out, size_t out_len, plada_error *err);

/* Unpack count values of width bits (0..64) from src into out[count].
 * src_len below ceil(count*width/8) gives PLADA_ERR_LENGTH (expected = that
 * size, actual = src_len) and nothing is read. Padding is not checked. */
int plada_unpack_bits(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                      uint64_t *out, plada_error *err);

/* Upper bound of the index-delta body size for count indices: the buffer
 * size plada_delta_encode needs. */
size_t plada_delta_bound(size_t count);

/* Index-delta body (codec 0) of count strictly increasing, non-negative
 * indices: one width byte per 128-value block, then each block's gaps packed
 * at its width. *out_len receives the bytes written. Unsorted or negative
 * input gives PLADA_ERR_ARG; out_cap below the need gives PLADA_ERR_LENGTH. */
int plada_delta_encode(const int64_t *indices, size_t count, uint8_t *out, size_t out_cap,
                       size_t *out_len, plada_error *err);

/* Decode an index-delta body of src_len bytes into count indices in
 * [0, n_ref). Checks, in this order: the width table fits (LENGTH), every
 * width <= 64 (WIDTH), src_len equals the size the widths imply (LENGTH),
 * zero padding in the last block (PADDING), every index < n_ref (RANGE).
 * Linear in src_len + count; never reads outside src. */
int plada_delta_decode(const uint8_t *src, size_t src_len, size_t count, uint64_t n_ref,
                       int64_t *out, plada_error *err);

/* Bitmap body (codec 1): out_len must be ceil(n_ref/8); bit i is set iff i is
 * one of the count indices, which must lie in [0, n_ref) (else ARG). */
int plada_bitmap_encode(const int64_t *indices, size_t count, uint64_t n_ref,
                        uint8_t *out, size_t out_len, plada_error *err);

/* Decode a bitmap of src_len bytes over n_ref items into out[count]. Checks
 * src_len == ceil(n_ref/8) (LENGTH), zero padding (PADDING), exactly count
 * set bits (COUNT, actual = the population count) before writing out. */
int plada_bitmap_decode(const uint8_t *src, size_t src_len, size_t count, uint64_t n_ref,
                        int64_t *out, plada_error *err);

/* Decode count packed labels of width bits (0..32) into out, each below
 * n_classes. Checks src_len == ceil(count*width/8) (LENGTH), zero padding
 * (PADDING), every label < n_classes (LABEL, actual = the label). */
int plada_labels_decode(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                        uint32_t n_classes, int32_t *out, plada_error *err);

/* ---- format 1.1: joint context-model codec (plada_cm.c) ----------------
 * spec/FORMAT.md section 15; the pure-Python twin is plada_codec/_cm_py.py.
 * The stream below is the index section body after its preset byte; Python
 * reads the preset byte and passes the preset's parameters. */
typedef struct plada_cm_params {
    unsigned slots;          /* move-to-front slots, 0..4 */
    unsigned mantissa_bits;  /* modelled mantissa bits, 0..3 */
    unsigned average_shift;  /* gap-length average shift, 1..7 */
    unsigned rate_limit;     /* update count where a model's rate stops slowing, 0..255 */
} plada_cm_params;

/* Bytes the stream of count pairs can take at most: the out_cap that makes
 * plada_cm_encode never fail with PLADA_ERR_LENGTH. */
size_t plada_cm_bound(size_t count);

/* Encode count (index, label) pairs: indices strictly increasing in
 * [0, n_ref), labels in [0, n_classes) (else PLADA_ERR_ARG with position =
 * the entry; params out of range or n_ref/n_classes/count outside the
 * format's bounds also give PLADA_ERR_ARG). Writes the canonical stream to
 * out, *out_len receives its length; out_cap too small gives
 * PLADA_ERR_LENGTH (expected = plada_cm_bound(count)). */
int plada_cm_encode(const int64_t *indices, const int32_t *labels, size_t count, uint64_t n_ref,
                    uint32_t n_classes, const plada_cm_params *params, uint8_t *out,
                    size_t out_cap, size_t *out_len, plada_error *err);

/* Decode count pairs from the stream src[0..src_len) (bytes past src_len
 * read as zero, never from memory) into indices[count] and labels[count].
 * Every loop is bounded by count and the format's widths, so the work is
 * O(count) whatever the bytes. Errors, with err->position = the pair:
 * PLADA_ERR_CODED (a raw value outside its range; expected = the range,
 * actual = the value), PLADA_ERR_RANGE (index >= n_ref; actual = index),
 * PLADA_ERR_LABEL (label >= n_classes; actual = label), PLADA_ERR_CANONICAL
 * (a tree-coded label already in the move-to-front list: expected = 1,
 * actual = label), PLADA_ERR_START (the first four bytes are not below the
 * initial range: position = 0, actual = the code), PLADA_ERR_TRAILING (bytes
 * never read: expected = bytes read, actual = src_len), PLADA_ERR_END (a
 * non-canonical end: position = count). Outputs are unspecified after an error. */
int plada_cm_decode(const uint8_t *src, size_t src_len, size_t count, uint64_t n_ref,
                    uint32_t n_classes, const plada_cm_params *params, int64_t *indices,
                    int32_t *labels, plada_error *err);
/* ---- tar shard listing (plada_tar.c) --------------------------------------
 * spec/REFERENCE.md section 3.4; the Python reference is plada_codec/kinds/tar.py
 * (_walk, _check_checksums, _samples), the caller plada_codec/kinds/_tar_c.py.
 * Returns a plain int of its own, not a plada_status: 0 OK, 1 UNSURE, 2 RULE,
 * 3 an argument outside this contract.
 *
 * Walks the 512-byte headers of the uncompressed tar src[0..src_len) up to the
 * first all-zero block and groups its regular members into samples. Per sample
 * it writes the key (keys, ends in key_offsets[1..]), the image member's name
 * (names, ends in name_offsets[1..]; key_offsets[0] = name_offsets[0] = 0),
 * the data offset and the size; *count receives the samples. Names are the raw
 * header bytes (ustar prefix joined with "/", GNU "L" long names, pax "path").
 * extensions: the image extensions, lowercase ASCII, NUL-separated.
 * key_offsets and name_offsets hold samples_cap + 1 entries, offsets and sizes
 * samples_cap; table (zeroed; table_len a power of two above samples_cap, at
 * least four times it to keep probes short) finds a key seen before; seed
 * varies its hash. A shard of src_len bytes holds at most src_len / 512
 * members, so samples_cap = src_len / 512 never runs out; a blob too small, or
 * a probe run past 128 slots (keys made to collide), gives UNSURE. UNSURE: whatever the Python walk hands to tarfile (a bad checksum, a
 * size field other than plain octal or positive base-256, a cut header or no
 * end marker, data past src_len, pax size/hdrcharset/GNU.sparse or malformed
 * records, a type other than regular, 1-6, L, K, x, g). RULE: a sample with no
 * image or two, or a key seen in an earlier sample. Either way the outputs are
 * unspecified and the caller runs the Python path, which words the error.
 * Reads src only within src_len; every loop is bounded by src_len (at most
 * src_len / 512 headers, each pax block and name within its member). */
int plada_tar_list(const uint8_t *src, size_t src_len, const uint8_t *extensions, size_t extensions_len,
                   uint8_t *keys, size_t keys_cap, int64_t *key_offsets, uint8_t *names, size_t names_cap,
                   int64_t *name_offsets, int64_t *offsets, int64_t *sizes, size_t samples_cap,
                   uint32_t *table, size_t table_len, uint64_t seed, size_t *count);
/* CDEF END */

/* Internal to the C sources (outside the CDEF block, so cffi never sees it):
 * fill *err (when given) and return status, the one error path of every kernel. */
static inline int plada_fail(plada_error *err, int status, uint64_t position, uint64_t expected,
                             uint64_t actual)
{
    if (err) {
        err->position = position;
        err->expected = expected;
        err->actual = actual;
    }
    return status;
}

#endif /* PLADA_CORE_H */
