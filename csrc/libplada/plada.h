/* plada.h: libplada, a C decoder of PLADA payloads (spec/FORMAT.md, formats 1.0 - 1.2).
 *
 * One call decodes a payload held in memory:
 *
 *     plada_payload *p;
 *     char why[PLADA_MESSAGE_SIZE];
 *     int rc = plada_decode(NULL, bytes, size, &p, why, sizeof why);
 *     if (rc != PLADA_OK) { fprintf(stderr, "%s: %s\n", plada_result_name(rc), why); ... }
 *     for (uint64_t j = 0; j < p->header.count; j++) use(p->indices[j], p->labels[j]);
 *     plada_payload_free(p);
 *
 * Contract of the whole library:
 *   - No global state: every function is reentrant and thread-safe. A plada_options object is
 *     only read while decoding, so one object may serve many threads at once once it is set up.
 *   - Untrusted input: no read outside [data, data + size), no recursion on payload data, and
 *     the work and memory of a call are bounded as FORMAT.md 13 states (a refused payload costs
 *     in proportion to its own size, never to what it declares).
 *   - The caller owns what it gets back and frees it with the one matching function
 *     (plada_payload_free, plada_info_free, plada_options_free). On an error nothing is
 *     returned (*out is set to NULL) and nothing needs freeing.
 *   - Structures returned by the library are allocated by it: later ABI versions may append
 *     fields to them, so never allocate, copy by value or take sizeof of them.
 *   - Text (class names, task name, metadata) is validated UTF-8 (RFC 3629) with its byte length
 *     given, and also NUL-terminated for convenience; a name may itself contain U+0000.
 *
 * Link with `pkg-config --cflags --libs plada` (libplada and libzstd).
 */
#ifndef PLADA_H
#define PLADA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(PLADA_SHARED_BUILD)
#define PLADA_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define PLADA_API __attribute__((visibility("default")))
#else
#define PLADA_API
#endif

/* ABI version: bumped when a change breaks programs linked against an older library (the
 * shared library's soname is libplada.so.PLADA_ABI_VERSION). Compare plada_abi_version() with
 * this macro to catch a header/library mismatch. */
#define PLADA_ABI_VERSION 1

/* Newest payload format this library reads (FORMAT_MAJOR.FORMAT_MINOR of spec/FORMAT.md). It
 * reads every payload of major version 1. */
#define PLADA_FORMAT_MAJOR 1
#define PLADA_FORMAT_MINOR 2

/* Bytes that always hold a full error message (messages are one line, cut to fit). */
#define PLADA_MESSAGE_SIZE 256

/* Outcome of a call. Codes 1-8 map one-to-one to the error classes of FORMAT.md 9.1 (a payload
 * is at fault); codes from 100 are not payload errors (a caller bug or no memory). Truncated,
 * TrailingData, Checksum, UnsupportedVersion and UnsupportedFeature are kinds of FormatError:
 * plada_result_is_format_error() says so. */
typedef enum plada_result {
    PLADA_OK = 0,
    PLADA_FORMAT_ERROR = 1,         /* malformed payload */
    PLADA_TRUNCATED = 2,            /* ends before a declared field or section */
    PLADA_TRAILING_DATA = 3,        /* bytes after total_length */
    PLADA_CHECKSUM = 4,             /* a CRC32C mismatch */
    PLADA_UNSUPPORTED_VERSION = 5,  /* unknown major version */
    PLADA_UNSUPPORTED_FEATURE = 6,  /* unknown flag, critical type, codec, compression or preset */
    PLADA_LIMIT_EXCEEDED = 7,       /* beyond a local limit (plada_limit) */
    PLADA_REFERENCE_MISMATCH = 8,   /* wrong or missing binding to the given reference set */
    PLADA_OUT_OF_MEMORY = 100,      /* an allocation within the limits failed */
    PLADA_INVALID_ARGUMENT = 101    /* a NULL pointer or value outside a function's contract */
} plada_result;

/* The class name of FORMAT.md 9.1 ("FormatError", "Truncated", ...), "OK", "OutOfMemory",
 * "InvalidArgument", or "Unknown" for any other value. A static string. */
PLADA_API const char *plada_result_name(int result);

/* 1 for PLADA_FORMAT_ERROR and its five kinds (9.1), else 0. */
PLADA_API int plada_result_is_format_error(int result);

/* PLADA_ABI_VERSION of the library actually linked. */
PLADA_API int plada_abi_version(void);

/* Newest format version the linked library reads: major * 256 + minor (0x0102 for 1.2). */
PLADA_API unsigned plada_format_version(void);

/* ---- options: limits and reference binding ---------------------------------------------- */

/* The local limits of FORMAT.md 5.5. */
typedef enum plada_limit {
    PLADA_MAX_COUNT = 1,            /* largest count k (default 2^24); step 5 */
    PLADA_MAX_SECTION_BYTES = 2,    /* raw_length and stored_length of any section (2^28); step 6 */
    PLADA_MAX_ANCILLARY_BYTES = 3,  /* task-name / metadata raw_length, class-names
                                       max(raw_length, 64 C) (2^22); step 8b */
    PLADA_MAX_METADATA_ITEMS = 4    /* bytes [ { , : in the metadata body (2^16); step 8b */
} plada_limit;

/* The spec's default of *which*, or 0 for an unknown limit. */
PLADA_API uint64_t plada_limit_default(plada_limit which);

/* Decoding options: the limits (defaults of 5.5) and an optional reference binding. Opaque so
 * that later versions can add options without breaking the ABI. NULL where a function takes
 * options means "the defaults, no reference". */
typedef struct plada_options plada_options;

/* A new options object with the default limits and no reference; NULL when out of memory. */
PLADA_API plada_options *plada_options_new(void);

/* Frees *options* (NULL is allowed). */
PLADA_API void plada_options_free(plada_options *options);

/* Sets limit *which* to *value* (any value; 0 refuses every non-empty instance).
 * PLADA_INVALID_ARGUMENT for a NULL object or an unknown limit. */
PLADA_API int plada_options_set_limit(plada_options *options, plada_limit which, uint64_t value);

/* The current value of limit *which* (0 for an unknown one or a NULL object). */
PLADA_API uint64_t plada_options_get_limit(const plada_options *options, plada_limit which);

/* Decode only payloads bound to the reference set of *n_ref* items whose manifest SHA-256 (or
 * catalog-text SHA-256, REFERENCE.md 8) is *fingerprint* (32 bytes): step 7 of FORMAT.md 9
 * refuses an unbound payload, another n_ref or another fingerprint [ReferenceMismatch].
 * fingerprint NULL removes the binding. */
PLADA_API int plada_options_set_reference(plada_options *options, uint64_t n_ref,
                                          const uint8_t fingerprint[32]);

/* ---- what a payload says ---------------------------------------------------------------- */

/* The header fields (FORMAT.md 4), after validation. */
typedef struct plada_header {
    unsigned version_major;      /* always 1 */
    unsigned version_minor;      /* any value 0..255 */
    uint32_t n_classes;          /* C, 1 .. 2^24 */
    uint64_t n_ref;              /* N, 1 .. 2^48 */
    uint64_t count;              /* k, 0 .. N */
    uint8_t fingerprint[32];     /* all zero when unbound */
    int bound;                   /* 0: all-zero fingerprint (unbound), 1: bound */
    uint64_t total_length;
    unsigned section_count;
} plada_header;

/* One framed section (5.1), bodies not decoded. */
typedef struct plada_section {
    unsigned type;               /* 0x0001 index, 0x0002 labels, 0x8001.. ancillary */
    unsigned codec;
    unsigned compression;        /* 0 none, 1 Zstandard */
    uint64_t raw_length;
    uint64_t stored_length;
    uint64_t offset;             /* of its section header in the payload */
    int critical;                /* 1 when ANCILLARY_BIT is clear */
    int understood;              /* 1 when this library knows the type, codec and compression */
    const char *name;            /* "index", ..., or "unknown" */
    const char *codec_name;      /* "delta", ..., or "unknown" */
    const char *compression_name;/* "none", "zstd" or "unknown" */
} plada_section;

/* A decoded payload. indices are strictly increasing in [0, n_ref); labels in [0, n_classes),
 * one per index. Absent ancillary content is NULL (with length 0). */
typedef struct plada_payload {
    plada_header header;
    const uint64_t *indices;          /* header.count entries (NULL when count is 0) */
    const uint32_t *labels;           /* header.count entries (NULL when count is 0) */
    const char *const *class_names;   /* NULL, or header.n_classes names */
    const size_t *class_name_lengths; /* byte length of each name */
    const char *task_name;            /* NULL or UTF-8 text */
    size_t task_name_length;
    const char *metadata_json;        /* NULL or the metadata body: a JSON object valid under 5.7 */
    size_t metadata_json_length;
} plada_payload;

/* Decodes the payload data[0 .. size) under *options* (NULL: defaults, no reference), following
 * FORMAT.md 9 step by step, so a damaged payload is refused with the class the spec names.
 * On success *out receives the payload (free it with plada_payload_free); on failure *out is
 * NULL and, when message is not NULL, message[0 .. message_size) receives one NUL-terminated
 * line saying where the error is (field, offset, entry). Memory: the output (12 bytes a pair)
 * grows as entries are decoded, so a refused payload holds only what came before its first
 * bad entry; beyond the output it holds at most a few MiB plus libzstd's window. */
PLADA_API int plada_decode(const plada_options *options, const void *data, size_t size,
                           plada_payload **out, char *message, size_t message_size);

/* Frees a payload from plada_decode (NULL is allowed). */
PLADA_API void plada_payload_free(plada_payload *payload);

/* What plada_inspect returns: the header and the section table. */
typedef struct plada_info {
    plada_header header;
    size_t section_count;
    const plada_section *sections;
} plada_info;

/* Checks the framing of a payload (steps 1-4 and 6 of FORMAT.md 9: magic, versions, header and
 * section CRCs, lengths, order) without decoding any body and without the local limits; the
 * same errors as plada_decode for those checks. Free *out with plada_info_free. */
PLADA_API int plada_inspect(const void *data, size_t size, plada_info **out, char *message,
                            size_t message_size);

/* Frees an info from plada_inspect (NULL is allowed). */
PLADA_API void plada_info_free(plada_info *info);

#ifdef __cplusplus
}
#endif

#endif /* PLADA_H */
