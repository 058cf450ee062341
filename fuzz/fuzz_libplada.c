/* fuzz_libplada.c: libFuzzer harness over libplada's public entry points (plada_decode,
 * plada_inspect), built with ASan and UBSan by fuzz/campaign.sh.
 *
 * Each input is decoded twice: under the default limits of FORMAT.md 5.5, and under tight
 * ones (so the LimitExceeded paths run), then inspected. A decoded payload must satisfy what
 * the spec promises a caller: indices strictly increasing below n_ref, labels below n_classes,
 * n_classes names when there are names, and an inspect that agrees on the header. Anything
 * else (a crash, a sanitizer report, an out-of-contract result) is a finding. */
#include "plada.h"

#include <stdlib.h>
#include <string.h>

static void check(const plada_payload *p, const uint8_t *data, size_t size)
{
    const plada_header *h = &p->header;
    for (uint64_t j = 0; j < h->count; j++) {
        if (p->indices[j] >= h->n_ref || (j && p->indices[j - 1] >= p->indices[j]) ||
            p->labels[j] >= h->n_classes)
            abort();
    }
    if (p->class_names) {
        for (uint32_t i = 0; i < h->n_classes; i++)
            if (p->class_names[i][p->class_name_lengths[i]] != 0)
                abort();
    }
    if (p->task_name && p->task_name[p->task_name_length] != 0)
        abort();
    if (p->metadata_json && (p->metadata_json_length < 2 || p->metadata_json[p->metadata_json_length] != 0))
        abort();
    plada_info *info;
    if (plada_inspect(data, size, &info, NULL, 0) != PLADA_OK)
        abort(); /* what decodes also frames */
    if (info->header.count != h->count || info->header.n_ref != h->n_ref)
        abort();
    plada_info_free(info);
}

/* ---- a checksum-repairing mutator: a random byte change almost always lands behind a CRC32C,
 * so 9 mutations in 10 get total_length, the sections' stored_length (when it runs past the
 * end) and every CRC recomputed (FORMAT.md 4, 5.1), as fuzz/payload_mutator.py does. ---- */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void repair(uint8_t *d, size_t size)
{
    if (size < 80)
        return;
    put_le(d + 64, size, 8);
    size_t offset = 80;
    unsigned sections = (unsigned)get_le(d + 72, 2);
    for (unsigned n = 0; n < sections && n < 256 && offset + 28 <= size; n++) {
        uint64_t stored = get_le(d + offset + 16, 8);
        if (stored > size - offset - 28) {
            stored = size - offset - 28;
            put_le(d + offset + 16, stored, 8);
            if (d[offset + 3] == 0)
                put_le(d + offset + 8, stored, 8);
        }
        size_t end = offset + 24 + (size_t)stored;
        put_le(d + end, crc32c(d + offset, end - offset), 4);
        offset = end + 4;
    }
    put_le(d + 76, crc32c(d, 76), 4);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 10 != 0)
        repair(data, size);
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char message[PLADA_MESSAGE_SIZE];
    plada_payload *p;
    int rc = plada_decode(NULL, data, size, &p, message, sizeof message);
    if (rc == PLADA_OK) {
        check(p, data, size);
        plada_payload_free(p);
    } else if (p != NULL || message[0] == 0 || rc > PLADA_REFERENCE_MISMATCH) {
        abort(); /* a refusal returns nothing, says why, and names a 9.1 class */
    }
    plada_options *tight = plada_options_new();
    if (!tight)
        return 0;
    plada_options_set_limit(tight, PLADA_MAX_COUNT, 1000);
    plada_options_set_limit(tight, PLADA_MAX_SECTION_BYTES, 4096);
    plada_options_set_limit(tight, PLADA_MAX_ANCILLARY_BYTES, 512);
    plada_options_set_limit(tight, PLADA_MAX_METADATA_ITEMS, 16);
    if (size >= 64) /* sometimes bound to the payload's own fingerprint and n_ref */
        plada_options_set_reference(tight, size >= 80 ? (uint64_t)data[16] | (uint64_t)data[17] << 8 : 1, data + 32);
    if (plada_decode(tight, data, size, &p, message, sizeof message) == PLADA_OK) {
        check(p, data, size);
        plada_payload_free(p);
    }
    plada_options_free(tight);
    plada_info *info;
    if (plada_inspect(data, size, &info, NULL, 0) == PLADA_OK)
        plada_info_free(info);
    return 0;
}
