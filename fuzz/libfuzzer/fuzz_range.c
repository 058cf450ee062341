/* libFuzzer harness for the format 1.1 range decoder (csrc/plada_cm.c).
 *
 * Input layout (little-endian):
 *   bytes 0..3   params: slots (mod 6), mantissa_bits (mod 5), average_shift
 *                (mod 9), rate_limit; 5 slots, 4 mantissa bits and shifts 0
 *                and 8 are outside the contract and must give PLADA_ERR_ARG
 *   bytes 4..5   count (u16)
 *   bytes 6..13  n_ref (u64, masked to 49 bits)
 *   bytes 14..17 n_classes (u32, masked to 25 bits)
 *   bytes 18..   the range-coded stream (the index body after its preset byte)
 * The stream is copied to an exact-size allocation and the outputs have
 * exactly count elements, so AddressSanitizer flags any access outside them.
 *
 * Checked (plada_core.h and spec/FORMAT.md section 15):
 *   - PLADA_ERR_ARG exactly when an argument is outside the contract;
 *   - on success: indices strictly increasing in [0, n_ref), labels in
 *     [0, n_classes), and the decoder accepted only the canonical stream:
 *     plada_cm_encode of the decoded pairs reproduces the input stream
 *     byte for byte (the decoder rejects trailing and non-canonical bytes);
 *   - on an error: the status is one the header documents.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plada_core.h"

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "plada range decoder invariant broken: %s (%s:%d): ", #cond, \
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 18)
        return 0;
    plada_cm_params params = {data[0] % 6u, data[1] % 5u, data[2] % 9u, data[3]};
    size_t count = (size_t)le(data + 4, 2);
    uint64_t n_ref = le(data + 6, 8) & ((UINT64_C(1) << 49) - 1);
    uint32_t n_classes = (uint32_t)(le(data + 14, 4) & ((UINT32_C(1) << 25) - 1));
    size_t len = size - 18;
    uint8_t *src = malloc(len ? len : 1);
    memcpy(src, data + 18, len);
    size_t alloc = count ? count : 1;
    int64_t *indices = malloc(alloc * sizeof *indices);
    int32_t *labels = malloc(alloc * sizeof *labels);

    int out_of_contract = params.slots > 4 || params.mantissa_bits > 3 ||
                          params.average_shift < 1 || params.average_shift > 7 || n_ref == 0 ||
                          n_ref > (UINT64_C(1) << 48) || n_classes == 0 ||
                          n_classes > (UINT32_C(1) << 24) || count > n_ref;
    plada_error err = {0, 0, 0};
    int status = plada_cm_decode(src, len, count, n_ref, n_classes, &params, indices, labels, &err);
    CHECK((status == PLADA_ERR_ARG) == out_of_contract, "status %d for %s arguments", status,
          out_of_contract ? "out-of-contract" : "valid");
    CHECK(status == PLADA_OK || status == PLADA_ERR_ARG || status == PLADA_ERR_CODED ||
              status == PLADA_ERR_RANGE || status == PLADA_ERR_LABEL ||
              status == PLADA_ERR_CANONICAL || status == PLADA_ERR_TRAILING ||
              status == PLADA_ERR_START || status == PLADA_ERR_END,
          "undocumented status %d", status);
    if (status != PLADA_OK && status != PLADA_ERR_ARG)
        CHECK(err.position <= count, "error position %llu past count %zu",
              (unsigned long long)err.position, count);
    if (status == PLADA_OK) {
        for (size_t i = 0; i < count; i++) {
            CHECK(indices[i] >= 0 && (uint64_t)indices[i] < n_ref,
                  "index %zu = %lld outside [0, %llu)", i, (long long)indices[i],
                  (unsigned long long)n_ref);
            CHECK(i == 0 || indices[i] > indices[i - 1], "indices not increasing at %zu", i);
            CHECK(labels[i] >= 0 && (uint32_t)labels[i] < n_classes,
                  "label %zu = %d outside [0, %u)", i, labels[i], n_classes);
        }
        size_t cap = plada_cm_bound(count), got = 0;
        uint8_t *again = malloc(cap ? cap : 1);
        int enc = plada_cm_encode(indices, labels, count, n_ref, n_classes, &params, again, cap,
                                  &got, &err);
        CHECK(enc == PLADA_OK, "re-encoding the decoded pairs failed with %d", enc);
        CHECK(got == len && memcmp(again, src, len) == 0,
              "decoder accepted a non-canonical stream: %zu bytes in, canonical is %zu", len, got);
        free(again);
    }
    free(src);
    free(indices);
    free(labels);
    return 0;
}
