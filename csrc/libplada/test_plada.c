/* test_plada.c: the library's own tests, run by `make check` (and under ASan/UBSan by
 * `make check SANITIZE=1`).
 *
 *   test_plada VECTORS_DIR     (spec/vectors: its v1.N and v1.N/invalid folders)
 *
 * Expected values come from the spec and the vectors' .json files, never from this library:
 * every valid vector decodes with its "count", every invalid one is refused with its "error"
 * class (under its "limits" and "reference"), and every prefix and single-byte change of the
 * small vectors is decoded or refused without a crash (what the sanitizers watch). */
#include "plada.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        checks++;                                         \
        if (!(cond)) {                                    \
            failures++;                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                 \
            fputc('\n', stderr);                          \
        }                                                 \
    } while (0)

static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = 0;
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* The unsigned integer after "key": in a vector's JSON text, or def. */
static unsigned long long json_number(const char *json, const char *key, unsigned long long def)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    if (!p)
        return def;
    return strtoull(p + strlen(pattern), NULL, 10);
}

/* The string value after "key": into out, or 0 when absent. */
static int json_string(const char *json, const char *key, char *out, size_t size)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    if (!p)
        return 0;
    p = strchr(p + strlen(pattern), '"');
    if (!p)
        return 0;
    const char *end = strchr(p + 1, '"');
    size_t n = (size_t)(end - p - 1);
    if (n >= size)
        n = size - 1;
    memcpy(out, p + 1, n);
    out[n] = 0;
    return 1;
}

static void test_api(void)
{
    CHECK(plada_abi_version() == PLADA_ABI_VERSION, "ABI version");
    CHECK(plada_format_version() == 0x0102, "format version 1.2");
    CHECK(strcmp(plada_result_name(PLADA_REFERENCE_MISMATCH), "ReferenceMismatch") == 0, "class name");
    CHECK(strcmp(plada_result_name(PLADA_TRUNCATED), "Truncated") == 0, "class name");
    CHECK(plada_result_is_format_error(PLADA_CHECKSUM) && !plada_result_is_format_error(PLADA_LIMIT_EXCEEDED),
          "kinds of FormatError (9.1)");
    /* FORMAT.md 5.5's defaults */
    CHECK(plada_limit_default(PLADA_MAX_COUNT) == (1ULL << 24), "max_count default");
    CHECK(plada_limit_default(PLADA_MAX_SECTION_BYTES) == (1ULL << 28), "max_section_bytes default");
    CHECK(plada_limit_default(PLADA_MAX_ANCILLARY_BYTES) == (1ULL << 22), "max_ancillary_bytes default");
    CHECK(plada_limit_default(PLADA_MAX_METADATA_ITEMS) == (1ULL << 16), "max_metadata_items default");
    plada_options *o = plada_options_new();
    CHECK(o && plada_options_get_limit(o, PLADA_MAX_COUNT) == (1ULL << 24), "new options hold the defaults");
    CHECK(plada_options_set_limit(o, (plada_limit)99, 1) == PLADA_INVALID_ARGUMENT, "unknown limit refused");
    CHECK(plada_options_set_limit(o, PLADA_MAX_COUNT, 5) == PLADA_OK && plada_options_get_limit(o, PLADA_MAX_COUNT) == 5,
          "set limit");
    plada_options_free(o);
    plada_options_free(NULL);
    plada_payload_free(NULL);
    plada_info_free(NULL);
    char message[PLADA_MESSAGE_SIZE];
    CHECK(plada_decode(NULL, "x", 1, NULL, message, sizeof message) == PLADA_INVALID_ARGUMENT, "NULL out");
    plada_payload *p = (plada_payload *)&message;
    CHECK(plada_decode(NULL, NULL, 0, &p, message, sizeof message) == PLADA_TRUNCATED && p == NULL,
          "an empty input is Truncated (vector invalid/000) and *out is NULL");
    CHECK(plada_decode(NULL, NULL, 5, &p, message, sizeof message) == PLADA_INVALID_ARGUMENT, "NULL data");
    /* A message buffer of any size, including none, is safe. */
    CHECK(plada_decode(NULL, "\x89PLADA\r\n\x02", 9, &p, NULL, 0) == PLADA_TRUNCATED, "9 bytes: Truncated");
    CHECK(plada_decode(NULL, "\x89PLADA\r\n\x02\x00", 10, &p, message, 4) == PLADA_UNSUPPORTED_VERSION &&
              strlen(message) == 3, "message cut to fit");
    CHECK(plada_decode(NULL, "GIF89a", 6, &p, message, sizeof message) == PLADA_FORMAT_ERROR, "bad magic");
}

/* Every prefix and (for small payloads) every byte XOR 0x01 / 0x80 / 0xFF: any outcome but a
 * crash, and a valid result is self-consistent. */
static void torture(const unsigned char *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    for (size_t n = 0; n < size; n++) {
        memcpy(copy, data, n);
        plada_payload *p;
        int rc = plada_decode(NULL, copy, n, &p, NULL, 0);
        CHECK(rc != PLADA_OK, "a %zu-byte prefix decoded", n);
        plada_payload_free(p);
    }
    if (size > 4096) {
        free(copy);
        return;
    }
    static const unsigned char FLIPS[] = {0x01, 0x80, 0xFF};
    for (size_t i = 0; i < size; i++)
        for (size_t f = 0; f < sizeof FLIPS; f++) {
            memcpy(copy, data, size);
            copy[i] ^= FLIPS[f];
            plada_payload *p;
            char message[PLADA_MESSAGE_SIZE];
            int rc = plada_decode(NULL, copy, size, &p, message, sizeof message);
            CHECK(rc == PLADA_OK || (rc >= PLADA_FORMAT_ERROR && rc <= PLADA_REFERENCE_MISMATCH),
                  "byte %zu ^ %02x: result %d", i, FLIPS[f], rc);
            if (rc == PLADA_OK) {
                for (uint64_t j = 1; j < p->header.count; j++)
                    CHECK(p->indices[j - 1] < p->indices[j], "indices increase");
                plada_payload_free(p);
            } else {
                CHECK(message[0] != 0, "a refusal says why");
            }
        }
    free(copy);
}

static void test_folder(const char *dir, int invalid)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t json_size, size;
        char *json = read_file(path, &json_size);
        snprintf(path + strlen(path) - 5, 6, ".bin");
        unsigned char *data = (unsigned char *)read_file(path, &size);
        if (!json || !data) {
            CHECK(0, "cannot read %s", path);
            free(json);
            free(data);
            continue;
        }
        /* compact the JSON (drop spaces and newlines) so the key lookups are simple */
        size_t o = 0;
        for (size_t i = 0; i < json_size; i++)
            if (json[i] != ' ' && json[i] != '\n')
                json[o++] = json[i];
        json[o] = 0;
        plada_options *opts = plada_options_new();
        static const struct {
            const char *key;
            plada_limit limit;
        } LIMITS[] = {{"max_count", PLADA_MAX_COUNT}, {"max_section_bytes", PLADA_MAX_SECTION_BYTES},
                      {"max_ancillary_bytes", PLADA_MAX_ANCILLARY_BYTES},
                      {"max_metadata_items", PLADA_MAX_METADATA_ITEMS}};
        const char *limits = strstr(json, "\"limits\":");
        for (size_t l = 0; limits && l < 4; l++)
            plada_options_set_limit(opts, LIMITS[l].limit,
                                    json_number(limits, LIMITS[l].key, plada_limit_default(LIMITS[l].limit)));
        const char *reference = strstr(json, "\"reference\":{");
        if (reference) {
            char hex[80];
            uint8_t fp[32];
            json_string(reference, "fingerprint", hex, sizeof hex);
            for (int i = 0; i < 32; i++) {
                unsigned v = 0;
                sscanf(hex + 2 * i, "%2x", &v);
                fp[i] = (uint8_t)v;
            }
            plada_options_set_reference(opts, json_number(reference, "n_ref", 0), fp);
        }
        plada_payload *p;
        char message[PLADA_MESSAGE_SIZE];
        int rc = plada_decode(opts, data, size, &p, message, sizeof message);
        if (invalid) {
            char expected[64] = "";
            json_string(json, "error", expected, sizeof expected);
            CHECK(strcmp(plada_result_name(rc), expected) == 0, "%s: %s (%s), expected %s", path,
                  plada_result_name(rc), message, expected);
            plada_payload_free(p);
        } else {
            CHECK(rc == PLADA_OK, "%s: %s: %s", path, plada_result_name(rc), message);
            if (rc == PLADA_OK) {
                CHECK(p->header.count == json_number(json, "count", ~0ULL), "%s: count", path);
                CHECK(p->header.n_ref == json_number(json, "n_ref", ~0ULL), "%s: n_ref", path);
                CHECK(p->header.n_classes == json_number(json, "n_classes", ~0ULL), "%s: n_classes", path);
                CHECK((p->class_names == NULL) == (strstr(json, "\"class_names\":null") != NULL),
                      "%s: class names present", path);
                CHECK((p->metadata_json == NULL) == (strstr(json, "\"metadata\":null") != NULL),
                      "%s: metadata present", path);
                plada_info *info;
                CHECK(plada_inspect(data, size, &info, message, sizeof message) == PLADA_OK, "%s: inspect", path);
                if (info) {
                    CHECK(info->header.count == p->header.count && info->section_count >= 2, "%s: inspect", path);
                    plada_info_free(info);
                }
                plada_payload_free(p);
            }
            torture(data, size);
        }
        plada_options_free(opts);
        free(json);
        free(data);
    }
    closedir(d);
}

/* Thread safety: one shared options object, the same payload decoded by 4 threads at once,
 * each result equal to a decode made alone. */
typedef struct job {
    const plada_options *options;
    const unsigned char *data;
    size_t size;
    uint64_t sum; /* of indices and labels, over 50 decodes */
} job;

static void *decode_many(void *arg)
{
    job *j = arg;
    for (int round = 0; round < 50; round++) {
        plada_payload *p;
        if (plada_decode(j->options, j->data, j->size, &p, NULL, 0) != PLADA_OK)
            return NULL;
        for (uint64_t i = 0; i < p->header.count; i++)
            j->sum += p->indices[i] + p->labels[i];
        plada_payload_free(p);
    }
    return NULL;
}

static void test_threads(const char *vectors)
{
    char path[1024];
    size_t size;
    snprintf(path, sizeof path, "%s/v1.1/009-imagenet1k-1pct-auto.bin", vectors);
    unsigned char *data = (unsigned char *)read_file(path, &size);
    if (!data) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    plada_options *options = plada_options_new();
    job alone = {options, data, size, 0};
    decode_many(&alone);
    CHECK(alone.sum != 0, "the vector decodes");
    job jobs[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = alone;
        jobs[t].sum = 0;
        pthread_create(&threads[t], NULL, decode_many, &jobs[t]);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        CHECK(jobs[t].sum == alone.sum, "thread %d decoded the same content", t);
    }
    plada_options_free(options);
    free(data);
}

int main(int argc, char **argv)
{
    test_api();
    if (argc > 1) {
        static const char *VERSIONS[] = {"v1.0", "v1.1", "v1.2"};
        for (int v = 0; v < 3; v++) {
            char dir[1024];
            snprintf(dir, sizeof dir, "%s/%s", argv[1], VERSIONS[v]);
            test_folder(dir, 0);
            snprintf(dir, sizeof dir, "%s/%s/invalid", argv[1], VERSIONS[v]);
            test_folder(dir, 1);
        }
        test_threads(argv[1]);
    }
    printf("test_plada: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
