/* plada.c: the container, the sections, the limits and the errors of FORMAT.md, in C.
 *
 * decode() follows FORMAT.md 9 step by step, in the spec's order, because the order decides
 * which error class a damaged payload gets. The critical bodies are decoded together, CHUNK
 * entries of each per step, into output arrays that grow as entries arrive (9, step 8b, and
 * 13): a payload refused for a bad entry costs in proportion to the entries before it, never
 * to the count it declares. A Zstandard body is decompressed as it is read. */
#include "plada.h"

#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "crc32c_table.h"

/* ---- constants of FORMAT.md 2 and 5.5 ---------------------------------------------------- */
static const uint8_t MAGIC[8] = {0x89, 'P', 'L', 'A', 'D', 'A', '\r', '\n'};
#define HEADER_SIZE 80
#define SECTION_HEADER_SIZE 24
#define SECTION_CRC_SIZE 4
#define MAX_N_REF (UINT64_C(1) << 48)
#define MAX_CLASSES (UINT32_C(1) << 24)
#define MAX_SECTIONS 256
#define BLOCK 128
#define ANCILLARY_BIT 0x8000u
#define ANCILLARY_MAX_RAW (UINT64_C(1) << 26)
#define ZSTD_MAX_WINDOW (UINT64_C(1) << 27)
#define ZSTD_MAX_WINDOW_LOG 27
#define NAME_COST 64 /* 5.5: a class name counts as at least 64 bytes */

#define TYPE_INDEX 0x0001u
#define TYPE_LABELS 0x0002u
#define TYPE_CLASS_NAMES 0x8001u
#define TYPE_TASK_NAME 0x8002u
#define TYPE_METADATA 0x8003u

/* Entries of each critical body decoded per step: a multiple of 128 (an index-delta block)
 * and of 8 (packed labels of any width start on a byte). */
#define CHUNK 65536
/* Bytes of a bitmap body read at a time (FORMAT.md 13: "256 KiB at a time"). */
#define BITMAP_READ (1u << 18)

#define DEFAULT_MAX_COUNT (UINT64_C(1) << 24)
#define DEFAULT_MAX_SECTION_BYTES (UINT64_C(1) << 28)
#define DEFAULT_MAX_ANCILLARY_BYTES (UINT64_C(1) << 22)
#define DEFAULT_MAX_METADATA_ITEMS (UINT64_C(1) << 16)

/* ---- small helpers ------------------------------------------------------------------------ */
static uint64_t load_le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* -DPLADA_NO_HW_CRC builds the table path on x86 too (the sanitizer run of the tests does). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(PLADA_NO_HW_CRC)
#define PLADA_HW_CRC 1
/* SSE4.2's crc32 instruction computes exactly CRC32C (the Castagnoli polynomial). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(const uint8_t *p, size_t n)
{
    uint64_t crc = 0xFFFFFFFFu;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = __builtin_ia32_crc32di(crc, v);
        p += 8;
        n -= 8;
    }
    uint32_t c = (uint32_t)crc;
    while (n--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c ^ 0xFFFFFFFFu;
}
#endif

static uint32_t crc32c(const uint8_t *p, size_t n)
{
#ifdef PLADA_HW_CRC
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw(p, n);
#endif
    uint32_t crc = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo = crc ^ (uint32_t)load_le(p, 4);
        uint32_t hi = (uint32_t)load_le(p + 4, 4);
        crc = CRC32C_TABLE[7][lo & 0xFF] ^ CRC32C_TABLE[6][(lo >> 8) & 0xFF] ^
              CRC32C_TABLE[5][(lo >> 16) & 0xFF] ^ CRC32C_TABLE[4][lo >> 24] ^
              CRC32C_TABLE[3][hi & 0xFF] ^ CRC32C_TABLE[2][(hi >> 8) & 0xFF] ^
              CRC32C_TABLE[1][(hi >> 16) & 0xFF] ^ CRC32C_TABLE[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ CRC32C_TABLE[0][(crc ^ *p++) & 0xFF];
    return crc ^ 0xFFFFFFFFu;
}

static unsigned bit_length(uint64_t v)
{
    unsigned n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* Where an error goes: the caller's message buffer. */
typedef struct report {
    char *message;
    size_t size;
} report;

PLADA_PRINTF(3, 4) static int fail(const report *r, int code, const char *fmt, ...)
{
    if (r->message && r->size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->message, r->size, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- public trivia ------------------------------------------------------------------------ */
const char *plada_result_name(int result)
{
    switch (result) {
    case PLADA_OK: return "OK";
    case PLADA_FORMAT_ERROR: return "FormatError";
    case PLADA_TRUNCATED: return "Truncated";
    case PLADA_TRAILING_DATA: return "TrailingData";
    case PLADA_CHECKSUM: return "Checksum";
    case PLADA_UNSUPPORTED_VERSION: return "UnsupportedVersion";
    case PLADA_UNSUPPORTED_FEATURE: return "UnsupportedFeature";
    case PLADA_LIMIT_EXCEEDED: return "LimitExceeded";
    case PLADA_REFERENCE_MISMATCH: return "ReferenceMismatch";
    case PLADA_OUT_OF_MEMORY: return "OutOfMemory";
    case PLADA_INVALID_ARGUMENT: return "InvalidArgument";
    default: return "Unknown";
    }
}

int plada_result_is_format_error(int result)
{
    return result >= PLADA_FORMAT_ERROR && result <= PLADA_UNSUPPORTED_FEATURE;
}

int plada_abi_version(void)
{
    return PLADA_ABI_VERSION;
}

unsigned plada_format_version(void)
{
    return PLADA_FORMAT_MAJOR * 256u + PLADA_FORMAT_MINOR;
}

/* ---- options -------------------------------------------------------------------------------- */
struct plada_options {
    uint64_t limits[5]; /* by plada_limit */
    int has_reference;
    uint64_t reference_n;
    uint8_t reference_fingerprint[32];
};

uint64_t plada_limit_default(plada_limit which)
{
    switch (which) {
    case PLADA_MAX_COUNT: return DEFAULT_MAX_COUNT;
    case PLADA_MAX_SECTION_BYTES: return DEFAULT_MAX_SECTION_BYTES;
    case PLADA_MAX_ANCILLARY_BYTES: return DEFAULT_MAX_ANCILLARY_BYTES;
    case PLADA_MAX_METADATA_ITEMS: return DEFAULT_MAX_METADATA_ITEMS;
    default: return 0;
    }
}

static void options_defaults(plada_options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = PLADA_MAX_COUNT; i <= PLADA_MAX_METADATA_ITEMS; i++)
        o->limits[i] = plada_limit_default((plada_limit)i);
}

plada_options *plada_options_new(void)
{
    plada_options *o = malloc(sizeof *o);
    if (o)
        options_defaults(o);
    return o;
}

void plada_options_free(plada_options *options)
{
    free(options);
}

int plada_options_set_limit(plada_options *options, plada_limit which, uint64_t value)
{
    if (!options || which < PLADA_MAX_COUNT || which > PLADA_MAX_METADATA_ITEMS)
        return PLADA_INVALID_ARGUMENT;
    options->limits[which] = value;
    return PLADA_OK;
}

uint64_t plada_options_get_limit(const plada_options *options, plada_limit which)
{
    if (!options || which < PLADA_MAX_COUNT || which > PLADA_MAX_METADATA_ITEMS)
        return 0;
    return options->limits[which];
}

int plada_options_set_reference(plada_options *options, uint64_t n_ref, const uint8_t fingerprint[32])
{
    if (!options)
        return PLADA_INVALID_ARGUMENT;
    options->has_reference = fingerprint != NULL;
    options->reference_n = n_ref;
    if (fingerprint)
        memcpy(options->reference_fingerprint, fingerprint, 32);
    return PLADA_OK;
}

/* ---- codecs (FORMAT.md 5.2) ----------------------------------------------------------------- */
enum codec_kind {
    CODEC_DELTA, CODEC_BITMAP, CODEC_CONTEXT_MODEL,
    CODEC_PACKED, CODEC_BYTES, CODEC_JOINT,
    CODEC_NAMES_PLAIN, CODEC_NAMES_TEXT, CODEC_TASK_PLAIN, CODEC_METADATA_JSON
};

typedef struct codec_info {
    unsigned type, id;
    enum codec_kind kind;
    const char *name;
    unsigned introduced;     /* minor version that introduced it */
    int uncompressed_only;   /* 15.1: the context model's body is stored as is */
    unsigned partner_type;   /* joint codecs (5.2): the partner's (type, id); 0 = none */
    unsigned partner_id;
} codec_info;

static const codec_info CODECS[] = {
    {TYPE_INDEX, 0, CODEC_DELTA, "delta", 0, 0, 0, 0},
    {TYPE_INDEX, 1, CODEC_BITMAP, "bitmap", 0, 0, 0, 0},
    {TYPE_INDEX, 2, CODEC_CONTEXT_MODEL, "context-model", 1, 1, TYPE_LABELS, 2},
    {TYPE_LABELS, 0, CODEC_PACKED, "packed", 0, 0, 0, 0},
    {TYPE_LABELS, 1, CODEC_BYTES, "bytes", 0, 0, 0, 0},
    {TYPE_LABELS, 2, CODEC_JOINT, "joint", 1, 0, TYPE_INDEX, 2},
    {TYPE_CLASS_NAMES, 0, CODEC_NAMES_PLAIN, "plain", 0, 0, 0, 0},
    {TYPE_CLASS_NAMES, 1, CODEC_NAMES_TEXT, "text", 2, 0, 0, 0},
    {TYPE_TASK_NAME, 0, CODEC_TASK_PLAIN, "plain", 0, 0, 0, 0},
    {TYPE_METADATA, 0, CODEC_METADATA_JSON, "json", 0, 0, 0, 0},
};

static const codec_info *find_codec(unsigned type, unsigned id)
{
    for (size_t i = 0; i < sizeof CODECS / sizeof *CODECS; i++)
        if (CODECS[i].type == type && CODECS[i].id == id)
            return &CODECS[i];
    return NULL;
}

static const char *section_name(unsigned type)
{
    switch (type) {
    case TYPE_INDEX: return "index";
    case TYPE_LABELS: return "labels";
    case TYPE_CLASS_NAMES: return "class-names";
    case TYPE_TASK_NAME: return "task-name";
    case TYPE_METADATA: return "metadata";
    default: return "unknown";
    }
}

static const char *compression_name(unsigned compression)
{
    return compression == 0 ? "none" : compression == 1 ? "zstd" : "unknown";
}

/* ---- header and framing (9, steps 1-4 and 6) ------------------------------------------------- */
typedef struct section {
    unsigned type, codec, compression;
    uint64_t raw_length, stored_length, offset;
    const uint8_t *body;
    const codec_info *info; /* step 8a's resolution; NULL: skipped */
} section;

/* "index section at offset 80" */
static void where(const section *s, char *out, size_t size)
{
    if (strcmp(section_name(s->type), "unknown") == 0)
        snprintf(out, size, "section type 0x%04x at offset %llu", s->type, (unsigned long long)s->offset);
    else
        snprintf(out, size, "%s section at offset %llu", section_name(s->type), (unsigned long long)s->offset);
}

static int parse_header(const uint8_t *d, size_t size, plada_header *h, const report *r)
{
    size_t head = size < 8 ? size : 8;
    if (memcmp(d, MAGIC, head) != 0)
        return fail(r, PLADA_FORMAT_ERROR, "bad magic at offset 0: not a PLADA payload");
    if (size < 10)
        return fail(r, PLADA_TRUNCATED, "payload is %zu bytes; the header alone is %d", size, HEADER_SIZE);
    if (d[8] != 1)
        return fail(r, PLADA_UNSUPPORTED_VERSION, "format major version %u at offset 8; this decoder reads 1.x",
                    d[8]);
    if (size < HEADER_SIZE)
        return fail(r, PLADA_TRUNCATED, "payload is %zu bytes; the header alone is %d", size, HEADER_SIZE);
    uint32_t stored_crc = (uint32_t)load_le(d + 76, 4), actual = crc32c(d, 76);
    if (stored_crc != actual)
        return fail(r, PLADA_CHECKSUM, "header CRC32C at offset 76 is 0x%08x, computed 0x%08x", stored_crc, actual);
    unsigned flags = (unsigned)load_le(d + 10, 2), reserved = (unsigned)load_le(d + 74, 2);
    uint64_t n_classes = load_le(d + 12, 4), n_ref = load_le(d + 16, 8), count = load_le(d + 24, 8);
    uint64_t total = load_le(d + 64, 8);
    unsigned sections = (unsigned)load_le(d + 72, 2);
    if (flags)
        return fail(r, PLADA_UNSUPPORTED_FEATURE, "feature flags 0x%04x at offset 10: none exist in 1.x", flags);
    if (reserved)
        return fail(r, PLADA_FORMAT_ERROR, "reserved field at offset 74 is %u, must be 0", reserved);
    if (n_ref < 1 || n_ref > MAX_N_REF)
        return fail(r, PLADA_FORMAT_ERROR, "n_ref at offset 16 is %llu, allowed 1..2**48", (unsigned long long)n_ref);
    if (n_classes < 1 || n_classes > MAX_CLASSES)
        return fail(r, PLADA_FORMAT_ERROR, "n_classes at offset 12 is %llu, allowed 1..2**24",
                    (unsigned long long)n_classes);
    if (count > n_ref)
        return fail(r, PLADA_FORMAT_ERROR, "count at offset 24 is %llu, more than n_ref = %llu",
                    (unsigned long long)count, (unsigned long long)n_ref);
    if (sections < 2 || sections > MAX_SECTIONS)
        return fail(r, PLADA_FORMAT_ERROR, "section_count at offset 72 is %u, allowed 2..256", sections);
    if (total < HEADER_SIZE)
        return fail(r, PLADA_FORMAT_ERROR, "total_length at offset 64 is %llu, less than the header",
                    (unsigned long long)total);
    if (size < total)
        return fail(r, PLADA_TRUNCATED, "payload is %zu bytes but total_length declares %llu", size,
                    (unsigned long long)total);
    if (size > total)
        return fail(r, PLADA_TRAILING_DATA, "%llu bytes follow the payload's end at offset %llu",
                    (unsigned long long)(size - total), (unsigned long long)total);
    memset(h, 0, sizeof *h);
    h->version_major = 1;
    h->version_minor = d[9];
    h->n_classes = (uint32_t)n_classes;
    h->n_ref = n_ref;
    h->count = count;
    memcpy(h->fingerprint, d + 32, 32);
    for (int i = 0; i < 32; i++)
        h->bound |= h->fingerprint[i] != 0;
    h->total_length = total;
    h->section_count = sections;
    return PLADA_OK;
}

/* Step 6 into sections[header->section_count]; max_section_bytes 0 = no limit (inspect). */
static int parse_sections(const uint8_t *d, const plada_header *h, section *sections, int limited,
                          uint64_t max_section_bytes, const report *r)
{
    uint64_t offset = HEADER_SIZE, total = h->total_length;
    unsigned previous = 0;
    int have_index = 0, have_labels = 0;
    for (unsigned n = 0; n < h->section_count; n++) {
        if (total - offset < SECTION_HEADER_SIZE)
            return fail(r, PLADA_TRUNCATED, "section %u header at offset %llu runs past the payload's end (%llu)",
                        n, (unsigned long long)offset, (unsigned long long)total);
        const uint8_t *p = d + offset;
        section *s = &sections[n];
        s->type = (unsigned)load_le(p, 2);
        s->codec = p[2];
        s->compression = p[3];
        uint32_t flags = (uint32_t)load_le(p + 4, 4);
        s->raw_length = load_le(p + 8, 8);
        s->stored_length = load_le(p + 16, 8);
        s->offset = offset;
        s->info = NULL;
        uint64_t room = total - offset - SECTION_HEADER_SIZE;
        if (room < SECTION_CRC_SIZE || s->stored_length > room - SECTION_CRC_SIZE)
            return fail(r, PLADA_TRUNCATED,
                        "section %u at offset %llu declares stored_length %llu, which runs past the payload's "
                        "end (%llu)", n, (unsigned long long)offset, (unsigned long long)s->stored_length,
                        (unsigned long long)total);
        uint64_t end = offset + SECTION_HEADER_SIZE + s->stored_length + SECTION_CRC_SIZE;
        s->body = p + SECTION_HEADER_SIZE;
        uint32_t stored_crc = (uint32_t)load_le(d + end - SECTION_CRC_SIZE, 4);
        uint32_t actual = crc32c(p, (size_t)(end - SECTION_CRC_SIZE - offset));
        if (stored_crc != actual)
            return fail(r, PLADA_CHECKSUM, "section %u CRC32C at offset %llu is 0x%08x, computed 0x%08x", n,
                        (unsigned long long)(end - 4), stored_crc, actual);
        if (flags)
            return fail(r, PLADA_FORMAT_ERROR, "section %u reserved flags at offset %llu are 0x%x, must be 0", n,
                        (unsigned long long)(offset + 4), flags);
        if (s->type <= previous)
            return fail(r, PLADA_FORMAT_ERROR,
                        "section %u type 0x%04x at offset %llu is not greater than the previous type 0x%04x "
                        "(order or duplicate)", n, s->type, (unsigned long long)offset, previous);
        int ancillary = (s->type & ANCILLARY_BIT) != 0;
        if (!ancillary && s->type != TYPE_INDEX && s->type != TYPE_LABELS)
            return fail(r, PLADA_UNSUPPORTED_FEATURE, "section %u at offset %llu has unknown critical type 0x%04x",
                        n, (unsigned long long)offset, s->type);
        char w[96];
        where(s, w, sizeof w);
        if (ancillary && s->raw_length > ANCILLARY_MAX_RAW)
            return fail(r, PLADA_FORMAT_ERROR, "%s: raw_length %llu above the format's 2**26 for ancillary sections",
                        w, (unsigned long long)s->raw_length);
        if (s->compression == 0 && s->stored_length != s->raw_length)
            return fail(r, PLADA_FORMAT_ERROR, "%s: uncompressed but stored_length %llu != raw_length %llu", w,
                        (unsigned long long)s->stored_length, (unsigned long long)s->raw_length);
        if (limited && s->stored_length > max_section_bytes)
            return fail(r, PLADA_LIMIT_EXCEEDED, "%s: stored_length %llu is above max_section_bytes = %llu", w,
                        (unsigned long long)s->stored_length, (unsigned long long)max_section_bytes);
        if (limited && s->raw_length > max_section_bytes)
            return fail(r, PLADA_LIMIT_EXCEEDED, "%s: raw_length %llu is above max_section_bytes = %llu", w,
                        (unsigned long long)s->raw_length, (unsigned long long)max_section_bytes);
        have_index |= s->type == TYPE_INDEX;
        have_labels |= s->type == TYPE_LABELS;
        previous = s->type;
        offset = end;
    }
    if (offset != total)
        return fail(r, PLADA_FORMAT_ERROR, "%llu bytes at offset %llu belong to no section",
                    (unsigned long long)(total - offset), (unsigned long long)offset);
    if (!have_index)
        return fail(r, PLADA_FORMAT_ERROR, "the index section is missing");
    if (!have_labels)
        return fail(r, PLADA_FORMAT_ERROR, "the labels section is missing");
    return PLADA_OK;
}

/* ---- raw bodies: stored as is, or one Zstandard frame read as it is decoded (5.4) ---------- */
typedef struct source {
    const section *s;
    char where[96];
    uint64_t position;      /* raw bytes read so far */
    ZSTD_DCtx *dctx;        /* NULL: uncompressed */
    ZSTD_inBuffer in;
    uint8_t *buffer;        /* a compressed body's last read */
    size_t capacity;
    int ended;              /* libzstd reported the frame's end (content checksum verified) */
} source;

/* Every rule of 5.4 that the frame header shows, and where the frame ends. */
static int check_frame(const section *s, const char *w, const report *r)
{
    const uint8_t *b = s->body;
    uint64_t n = s->stored_length;
    if (n < 4 || b[0] != 0x28 || b[1] != 0xB5 || b[2] != 0x2F || b[3] != 0xFD)
        return fail(r, PLADA_FORMAT_ERROR, "%s: body does not start with a zstd frame magic", w);
    if (n < 5)
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame header is cut short", w);
    unsigned fhd = b[4];
    unsigned fcs_flag = fhd >> 6, single = (fhd >> 5) & 1, dict_flag = fhd & 3;
    if (fhd & 0x08)
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame header sets its reserved bit", w);
    static const unsigned DID_SIZE[4] = {0, 1, 2, 4};
    unsigned fcs_size = fcs_flag == 0 ? (single ? 1 : 0) : 1u << fcs_flag;
    uint64_t header = 5 + (single ? 0 : 1) + DID_SIZE[dict_flag] + fcs_size;
    if (n < header)
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame header is cut short", w);
    uint64_t pos = 5, window = 0;
    if (!single) {
        unsigned wd = b[pos++];
        unsigned window_log = 10 + (wd >> 3);
        if (window_log > 41) /* beyond any libzstd; far above 2^27 anyway */
            window_log = 41;
        uint64_t base = UINT64_C(1) << window_log;
        window = base + (base / 8) * (wd & 7);
    }
    uint64_t dict_id = load_le(b + pos, DID_SIZE[dict_flag]);
    pos += DID_SIZE[dict_flag];
    if (fcs_size == 0)
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame does not declare its content size", w);
    uint64_t declared = load_le(b + pos, fcs_size) + (fcs_size == 2 ? 256 : 0);
    if (single)
        window = declared;
    if (declared != s->raw_length)
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame declares %llu bytes, raw_length says %llu", w,
                    (unsigned long long)declared, (unsigned long long)s->raw_length);
    if (window > ZSTD_MAX_WINDOW)
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd window %llu bytes exceeds the format's 2**27", w,
                    (unsigned long long)window);
    if (dict_id)
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame needs dictionary %llu", w, (unsigned long long)dict_id);
    size_t end = ZSTD_findFrameCompressedSize(b, (size_t)n);
    if (ZSTD_isError(end))
        return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame is cut short or malformed (%s)", w,
                    ZSTD_getErrorName(end));
    if (end != n)
        return fail(r, PLADA_FORMAT_ERROR,
                    "%s: zstd frame ends at byte %zu of the %llu-byte body (one frame, nothing after it)", w, end,
                    (unsigned long long)n);
    return PLADA_OK;
}

static int source_open(source *src, const section *s, const report *r)
{
    memset(src, 0, sizeof *src);
    src->s = s;
    where(s, src->where, sizeof src->where);
    if (s->compression == 0)
        return PLADA_OK;
    int rc = check_frame(s, src->where, r);
    if (rc)
        return rc;
    src->dctx = ZSTD_createDCtx();
    if (!src->dctx)
        return fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory for a zstd context", src->where);
    ZSTD_DCtx_setParameter(src->dctx, ZSTD_d_windowLogMax, ZSTD_MAX_WINDOW_LOG);
    src->in.src = s->body;
    src->in.size = (size_t)s->stored_length;
    src->in.pos = 0;
    return PLADA_OK;
}

static void source_close(source *src)
{
    ZSTD_freeDCtx(src->dctx);
    free(src->buffer);
    src->dctx = NULL;
    src->buffer = NULL;
}

/* The next n raw bytes at *out (valid until the next read). */
static int source_read(source *src, size_t n, const uint8_t **out, const report *r)
{
    if (n > src->s->raw_length - src->position)
        return fail(r, PLADA_FORMAT_ERROR, "%s: body ends at byte %llu, %zu bytes read at %llu", src->where,
                    (unsigned long long)src->s->raw_length, n, (unsigned long long)src->position);
    if (!src->dctx) {
        *out = src->s->body + src->position;
        src->position += n;
        return PLADA_OK;
    }
    if (n > src->capacity) {
        uint8_t *b = realloc(src->buffer, n);
        if (!b)
            return fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory for %zu raw bytes", src->where, n);
        src->buffer = b;
        src->capacity = n;
    }
    ZSTD_outBuffer o = {src->buffer, n, 0};
    while (o.pos < n) {
        size_t in_before = src->in.pos, out_before = o.pos;
        size_t rc = ZSTD_decompressStream(src->dctx, &o, &src->in);
        if (ZSTD_isError(rc))
            return fail(r, PLADA_FORMAT_ERROR, "%s: corrupt zstd frame (%s)", src->where, ZSTD_getErrorName(rc));
        if (rc == 0)
            src->ended = 1;
        if (o.pos < n && (rc == 0 || (src->in.pos == in_before && o.pos == out_before)))
            return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame holds %llu bytes, raw_length says %llu", src->where,
                        (unsigned long long)(src->position + o.pos), (unsigned long long)src->s->raw_length);
    }
    src->position += n;
    *out = src->buffer;
    return PLADA_OK;
}

/* After the whole raw body was read: nothing follows it, and a frame decodes to its end (which
 * verifies its content checksum, 5.4). */
static int source_finish(source *src, const report *r)
{
    if (src->position != src->s->raw_length)
        return fail(r, PLADA_FORMAT_ERROR, "%s: %llu bytes of the body were not read", src->where,
                    (unsigned long long)(src->s->raw_length - src->position));
    if (!src->dctx || src->ended)
        return PLADA_OK;
    uint8_t extra;
    for (;;) {
        ZSTD_outBuffer o = {&extra, 1, 0};
        size_t in_before = src->in.pos;
        size_t rc = ZSTD_decompressStream(src->dctx, &o, &src->in);
        if (ZSTD_isError(rc))
            return fail(r, PLADA_FORMAT_ERROR, "%s: corrupt zstd frame (%s)", src->where, ZSTD_getErrorName(rc));
        if (o.pos)
            return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame holds more than raw_length = %llu bytes",
                        src->where, (unsigned long long)src->s->raw_length);
        if (rc == 0)
            return PLADA_OK;
        if (src->in.pos == in_before)
            return fail(r, PLADA_FORMAT_ERROR, "%s: zstd frame is cut short", src->where);
    }
}

/* ---- the critical bodies, entry by entry (6, 7, 9 step 8b) ---------------------------------- */
typedef struct index_reader {
    source src;
    enum codec_kind kind;
    uint64_t n_ref, count;
    /* delta */
    uint8_t *widths;
    uint64_t n_blocks, n_full, n_last;
    uint64_t prev_plus_one; /* one more than the last index, 0 at the start */
    /* bitmap */
    const uint8_t *block;
    size_t block_len, block_used;
    uint64_t block_start;
    uint64_t word, word_base; /* bits not yet taken of the current word, and its first position */
    uint64_t population;
} index_reader;

static uint64_t delta_block_bytes(const index_reader *x, uint64_t b)
{
    uint64_t w = x->widths[b];
    return b < x->n_full ? 16 * w : (x->n_last * w + 7) / 8;
}

static int index_open(index_reader *x, const section *s, const plada_header *h, const report *r)
{
    int rc = source_open(&x->src, s, r);
    if (rc)
        return rc;
    x->kind = s->info->kind;
    x->n_ref = h->n_ref;
    x->count = h->count;
    if (x->kind != CODEC_DELTA)
        return PLADA_OK;
    x->n_full = h->count / BLOCK;
    x->n_last = h->count % BLOCK;
    x->n_blocks = x->n_full + (x->n_last != 0);
    /* The width table is read and checked whole first (k / 128 bytes). */
    const uint8_t *table;
    if ((rc = source_read(&x->src, (size_t)x->n_blocks, &table, r)) != 0)
        return rc;
    x->widths = malloc(x->n_blocks ? (size_t)x->n_blocks : 1);
    if (!x->widths)
        return fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory for the width table", x->src.where);
    if (x->n_blocks)
        memcpy(x->widths, table, (size_t)x->n_blocks);
    uint64_t expected = x->n_blocks;
    for (uint64_t b = 0; b < x->n_blocks; b++) {
        if (x->widths[b] > 64)
            return fail(r, PLADA_FORMAT_ERROR, "%s: block %llu declares width %u, above 64", x->src.where,
                        (unsigned long long)b, x->widths[b]);
        expected += delta_block_bytes(x, b);
    }
    if (expected != s->raw_length)
        return fail(r, PLADA_FORMAT_ERROR, "%s: raw_length %llu, the widths imply %llu", x->src.where,
                    (unsigned long long)s->raw_length, (unsigned long long)expected);
    return PLADA_OK;
}

static int delta_take(index_reader *x, uint64_t first, size_t n, uint64_t *out, const report *r)
{
    uint64_t b0 = first / BLOCK, b1 = ceil_div(first + n, BLOCK);
    uint64_t bytes = 0;
    for (uint64_t b = b0; b < b1; b++)
        bytes += delta_block_bytes(x, b);
    const uint8_t *packed;
    int rc = source_read(&x->src, (size_t)bytes, &packed, r);
    if (rc)
        return rc;
    uint64_t gaps[BLOCK];
    uint64_t prev1 = x->prev_plus_one;
    for (uint64_t b = b0; b < b1; b++) {
        unsigned w = x->widths[b];
        size_t size = (size_t)delta_block_bytes(x, b);
        size_t m = b < x->n_full ? BLOCK : (size_t)x->n_last;
        if (b == x->n_blocks - 1 && x->n_last) {
            unsigned used = (unsigned)((x->n_last * w) % 8);
            if (used && (packed[size - 1] >> used))
                return fail(r, PLADA_FORMAT_ERROR, "%s: padding bits after block %llu are not zero", x->src.where,
                            (unsigned long long)b);
        }
        pl_unpack_bits(packed, size, m, w, gaps);
        packed += size;
        uint64_t *dst = out + (b * BLOCK - first);
        for (size_t j = 0; j < m; j++) {
            /* prev1 <= n_ref <= 2^48 and gap < n_ref: the sum stays below 2^49. */
            uint64_t gap = gaps[j];
            if (gap >= x->n_ref || prev1 + gap >= x->n_ref)
                return fail(r, PLADA_FORMAT_ERROR, "%s: entry %llu: index >= n_ref = %llu", x->src.where,
                            (unsigned long long)(b * BLOCK + j), (unsigned long long)x->n_ref);
            dst[j] = prev1 + gap;
            prev1 = dst[j] + 1;
        }
    }
    x->prev_plus_one = prev1;
    return PLADA_OK;
}

/* The next bitmap word into x->word, reading the next 256 KiB when the block is used up.
 * Returns 0 at the body's end (x->word left 0). */
static int bitmap_next_word(index_reader *x, int *rc, const report *r)
{
    *rc = PLADA_OK;
    if (x->block_used == x->block_len) {
        uint64_t start = x->block_start + x->block_len;
        uint64_t left = x->src.s->raw_length - start;
        if (left == 0)
            return 0;
        size_t want = left < BITMAP_READ ? (size_t)left : BITMAP_READ;
        x->block = NULL; /* for a compressed body the old block's buffer is reused */
        if ((*rc = source_read(&x->src, want, &x->block, r)) != 0)
            return 0;
        if (start + want == x->src.s->raw_length) {
            unsigned used = (unsigned)(x->n_ref % 8);
            if (used && (x->block[want - 1] >> used)) {
                *rc = fail(r, PLADA_FORMAT_ERROR, "%s: padding bits after item %llu are not zero", x->src.where,
                           (unsigned long long)x->n_ref);
                return 0;
            }
        }
        x->block_start = start;
        x->block_len = want;
        x->block_used = 0;
    }
    size_t m = x->block_len - x->block_used;
    if (m > 8)
        m = 8;
    x->word = load_le(x->block + x->block_used, (unsigned)m);
    x->word_base = 8 * (x->block_start + x->block_used);
    x->block_used += m;
    return 1;
}

static int bitmap_take(index_reader *x, size_t n, uint64_t *out, const report *r)
{
    size_t got = 0;
    int rc;
    while (got < n) {
        while (!x->word) {
            if (!bitmap_next_word(x, &rc, r)) {
                if (rc)
                    return rc;
                return fail(r, PLADA_FORMAT_ERROR, "%s: %llu bits set, count is %llu", x->src.where,
                            (unsigned long long)x->population, (unsigned long long)x->count);
            }
        }
        out[got++] = x->word_base + (unsigned)__builtin_ctzll(x->word);
        x->word &= x->word - 1;
        x->population++;
    }
    return PLADA_OK;
}

static int index_take(index_reader *x, uint64_t first, size_t n, uint64_t *out, const report *r)
{
    return x->kind == CODEC_DELTA ? delta_take(x, first, n, out, r) : bitmap_take(x, n, out, r);
}

static int index_finish(index_reader *x, const report *r)
{
    if (x->kind == CODEC_BITMAP) {
        int rc;
        for (;;) {
            x->population += (uint64_t)__builtin_popcountll(x->word);
            x->word = 0;
            if (!bitmap_next_word(x, &rc, r)) {
                if (rc)
                    return rc;
                break;
            }
        }
        if (x->population != x->count)
            return fail(r, PLADA_FORMAT_ERROR, "%s: %llu bits set, count is %llu", x->src.where,
                        (unsigned long long)x->population, (unsigned long long)x->count);
    }
    return source_finish(&x->src, r);
}

typedef struct label_reader {
    source src;
    enum codec_kind kind;
    unsigned width;   /* packed: bits; bytes: bytes */
    uint32_t n_classes;
} label_reader;

static int labels_take(label_reader *y, uint64_t first, size_t n, uint32_t *out, const report *r)
{
    const uint8_t *raw;
    int rc;
    if (y->kind == CODEC_PACKED) {
        if (y->width == 0) {
            memset(out, 0, n * sizeof *out);
            return PLADA_OK;
        }
        size_t bytes = (size_t)(((uint64_t)n * y->width + 7) / 8);
        if ((rc = source_read(&y->src, bytes, &raw, r)) != 0)
            return rc;
        uint64_t bad = 0;
        rc = pl_labels_packed(raw, bytes, n, y->width, y->n_classes, out, &bad);
        if (rc == PL_KERNEL_LABEL)
            return fail(r, PLADA_FORMAT_ERROR, "%s: entry %llu: label %u >= n_classes = %u", y->src.where,
                        (unsigned long long)(first + bad), out[bad], y->n_classes);
        if (rc)
            return fail(r, PLADA_FORMAT_ERROR, "%s: %s", y->src.where, pl_kernel_message(rc));
        return PLADA_OK;
    }
    if ((rc = source_read(&y->src, n * y->width, &raw, r)) != 0)
        return rc;
    for (size_t j = 0; j < n; j++) {
        uint32_t v = (uint32_t)load_le(raw + j * y->width, y->width);
        if (v >= y->n_classes)
            return fail(r, PLADA_FORMAT_ERROR, "%s: entry %llu: label %u >= n_classes = %u", y->src.where,
                        (unsigned long long)(first + j), v, y->n_classes);
        out[j] = v;
    }
    return PLADA_OK;
}

/* 5.5's bounds of a section's raw_length for its codec. */
static void raw_bounds(const codec_info *c, const plada_header *h, uint64_t *low, uint64_t *high)
{
    uint64_t k = h->count, C = h->n_classes;
    unsigned w = bit_length(C - 1);
    switch (c->kind) {
    case CODEC_DELTA: *low = ceil_div(k, BLOCK); *high = *low + 8 * k; return;
    case CODEC_BITMAP: *low = *high = ceil_div(h->n_ref, 8); return;
    case CODEC_CONTEXT_MODEL: *low = k ? ceil_div(k, 8) : 1; *high = 5 + 136 * k; return;
    case CODEC_PACKED: *low = *high = ceil_div(k * w, 8); return;
    case CODEC_BYTES: *low = *high = k * (w <= 8 ? 1 : w <= 16 ? 2 : 4); return;
    case CODEC_JOINT: *low = *high = 0; return;
    case CODEC_NAMES_PLAIN: *low = 4 * C; *high = ANCILLARY_MAX_RAW; return;
    case CODEC_NAMES_TEXT: *low = C - 1; *high = ANCILLARY_MAX_RAW; return;
    default: *low = 0; *high = ANCILLARY_MAX_RAW; return;
    }
}

static int check_bounds(const section *s, const plada_header *h, const report *r)
{
    uint64_t low, high;
    raw_bounds(s->info, h, &low, &high);
    if (s->raw_length < low || s->raw_length > high) {
        char w[96];
        where(s, w, sizeof w);
        return fail(r, PLADA_FORMAT_ERROR, "%s: raw_length %llu outside the %llu..%llu its codec allows for this header",
                    w, (unsigned long long)s->raw_length, (unsigned long long)low, (unsigned long long)high);
    }
    return PLADA_OK;
}

/* ---- the decoded payload ---------------------------------------------------------------------- */
typedef struct payload_impl {
    plada_payload pub;           /* first: a plada_payload * is a payload_impl * */
    uint64_t *indices;
    uint32_t *labels;
    char **names;
    size_t *name_lengths;
    char *names_text;
    char *task;
    char *metadata;
} payload_impl;

void plada_payload_free(plada_payload *payload)
{
    if (!payload)
        return;
    payload_impl *p = (payload_impl *)payload;
    free(p->indices);
    free(p->labels);
    free(p->names);
    free(p->name_lengths);
    free(p->names_text);
    free(p->task);
    free(p->metadata);
    free(p);
}

/* Grow an output array to hold `need` entries, doubling (at most `total`). */
static int grow_to(void **array, uint64_t *capacity, uint64_t need, uint64_t total, size_t item)
{
    if (need <= *capacity)
        return 1;
    uint64_t cap = *capacity * 2;
    if (cap < need)
        cap = need;
    if (cap > total)
        cap = total;
    void *p = realloc(*array, (size_t)cap * item);
    if (!p)
        return 0;
    *array = p;
    *capacity = cap;
    return 1;
}

static int decode_critical(const section *index, const section *labels, const plada_header *h,
                           payload_impl *p, const report *r)
{
    uint64_t k = h->count;
    int rc;
    if (index->info->kind == CODEC_CONTEXT_MODEL) {
        /* The whole body at once: k <= 8 * raw_length (15.1), so the output is bounded by the
         * bytes on the wire; the body is stored uncompressed (checked in step 8a). */
        char w[96];
        where(index, w, sizeof w);
        if (k) {
            p->indices = malloc((size_t)k * sizeof *p->indices);
            p->labels = malloc((size_t)k * sizeof *p->labels);
            if (!p->indices || !p->labels)
                return fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory for %llu pairs", w, (unsigned long long)k);
        }
        uint64_t bad = 0;
        rc = pl_cm_decode(index->body[0], index->body + 1, (size_t)index->raw_length - 1, (size_t)k, h->n_ref,
                          h->n_classes, p->indices, p->labels, &bad);
        if (rc == PL_KERNEL_PRESET)
            return fail(r, PLADA_UNSUPPORTED_FEATURE, "%s: unknown context-model preset %u", w, index->body[0]);
        if (rc)
            return fail(r, PLADA_FORMAT_ERROR, "%s: pair %llu: %s", w, (unsigned long long)bad, pl_kernel_message(rc));
        source joint;
        if ((rc = source_open(&joint, labels, r)) == 0)
            rc = source_finish(&joint, r);
        source_close(&joint);
        return rc;
    }
    index_reader x;
    label_reader y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    uint64_t index_cap = 0, label_cap = 0;
    rc = index_open(&x, index, h, r);
    if (!rc)
        rc = source_open(&y.src, labels, r);
    if (!rc) {
        y.kind = labels->info->kind;
        y.n_classes = h->n_classes;
        unsigned w = bit_length(h->n_classes - 1);
        y.width = y.kind == CODEC_PACKED ? w : w <= 8 ? 1 : w <= 16 ? 2 : 4;
    }
    for (uint64_t first = 0; !rc && first < k; first += CHUNK) {
        size_t n = (size_t)(k - first < CHUNK ? k - first : CHUNK);
        if (!grow_to((void **)&p->indices, &index_cap, first + n, k, sizeof *p->indices) ||
            !grow_to((void **)&p->labels, &label_cap, first + n, k, sizeof *p->labels)) {
            rc = fail(r, PLADA_OUT_OF_MEMORY, "out of memory for %llu entries", (unsigned long long)(first + n));
            break;
        }
        rc = index_take(&x, first, n, p->indices + first, r);
        if (!rc)
            rc = labels_take(&y, first, n, p->labels + first, r);
    }
    if (!rc)
        rc = index_finish(&x, r);
    if (!rc)
        rc = source_finish(&y.src, r);
    source_close(&x.src);
    source_close(&y.src);
    free(x.widths);
    return rc;
}

/* ---- ancillary sections (5.6, 5.7) ------------------------------------------------------------ */
static int check_utf8(const uint8_t *raw, size_t n, const char *w, const report *r)
{
    size_t bad;
    if (!pl_utf8_valid(raw, n, &bad))
        return fail(r, PLADA_FORMAT_ERROR, "%s: not UTF-8 (invalid sequence at byte %zu of the body)", w, bad);
    return PLADA_OK;
}

static char *copy_text(const uint8_t *raw, size_t n)
{
    char *t = malloc(n + 1);
    if (t) {
        if (n)
            memcpy(t, raw, n);
        t[n] = 0;
    }
    return t;
}

/* names_text holds every name NUL-terminated, one after the other. */
static int names_alloc(payload_impl *p, uint32_t C, size_t text_bytes, const char *w, const report *r)
{
    p->names = malloc(C * sizeof *p->names);
    p->name_lengths = malloc(C * sizeof *p->name_lengths);
    p->names_text = malloc(text_bytes + C);
    if (!p->names || !p->name_lengths || !p->names_text)
        return fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory for %u class names", w, C);
    return PLADA_OK;
}

static int decode_names_plain(const uint8_t *raw, size_t n, uint32_t C, payload_impl *p, const char *w,
                              const report *r)
{
    size_t pos = 0;
    /* Check the whole layout before allocating for it. */
    for (uint32_t i = 0; i < C; i++) {
        if (n - pos < 4)
            return fail(r, PLADA_FORMAT_ERROR, "%s: class name %u: length past the section", w, i);
        uint64_t len = load_le(raw + pos, 4);
        if (len > n - pos - 4)
            return fail(r, PLADA_FORMAT_ERROR, "%s: class name %u: %llu bytes past the section", w, i,
                        (unsigned long long)len);
        int rc = check_utf8(raw + pos + 4, (size_t)len, w, r);
        if (rc)
            return rc;
        pos += 4 + (size_t)len;
    }
    if (pos != n)
        return fail(r, PLADA_FORMAT_ERROR, "%s: %zu bytes after the last class name", w, n - pos);
    int rc = names_alloc(p, C, n, w, r);
    if (rc)
        return rc;
    char *t = p->names_text;
    pos = 0;
    for (uint32_t i = 0; i < C; i++) {
        size_t len = (size_t)load_le(raw + pos, 4);
        if (len)
            memcpy(t, raw + pos + 4, len);
        t[len] = 0;
        p->names[i] = t;
        p->name_lengths[i] = len;
        t += len + 1;
        pos += 4 + len;
    }
    return PLADA_OK;
}

static int decode_names_text(const uint8_t *raw, size_t n, uint32_t C, payload_impl *p, const char *w,
                             const report *r)
{
    size_t lf = 0;
    for (size_t i = 0; i < n; i++)
        lf += raw[i] == '\n';
    if (lf != (size_t)C - 1)
        return fail(r, PLADA_FORMAT_ERROR, "%s: %zu LF bytes, n_classes - 1 = %u expected", w, lf, C - 1);
    int rc = check_utf8(raw, n, w, r);
    if (rc)
        return rc;
    if ((rc = names_alloc(p, C, n, w, r)) != 0)
        return rc;
    char *t = p->names_text;
    size_t start = 0;
    for (uint32_t i = 0; i < C; i++) {
        size_t end = start;
        while (end < n && raw[end] != '\n')
            end++;
        if (end > start)
            memcpy(t, raw + start, end - start);
        t[end - start] = 0;
        p->names[i] = t;
        p->name_lengths[i] = end - start;
        t += end - start + 1;
        start = end + 1;
    }
    return PLADA_OK;
}

static int decode_ancillary(const section *s, const plada_header *h, const plada_options *o, payload_impl *p,
                            const report *r)
{
    char w[96];
    where(s, w, sizeof w);
    int rc = check_bounds(s, h, r);
    if (rc)
        return rc;
    uint64_t cost = s->raw_length;
    if (s->info->kind == CODEC_NAMES_PLAIN || s->info->kind == CODEC_NAMES_TEXT) {
        uint64_t floor = (uint64_t)NAME_COST * h->n_classes;
        if (floor > cost)
            cost = floor;
    }
    uint64_t limit = o->limits[PLADA_MAX_ANCILLARY_BYTES];
    if (cost > limit) {
        if (cost == s->raw_length)
            return fail(r, PLADA_LIMIT_EXCEEDED, "%s: raw_length %llu is above max_ancillary_bytes = %llu", w,
                        (unsigned long long)s->raw_length, (unsigned long long)limit);
        return fail(r, PLADA_LIMIT_EXCEEDED,
                    "%s: raw_length %llu (counted as %llu bytes: 64 a class name or more) is above "
                    "max_ancillary_bytes = %llu", w, (unsigned long long)s->raw_length, (unsigned long long)cost,
                    (unsigned long long)limit);
    }
    source src;
    const uint8_t *raw = NULL;
    size_t n = (size_t)s->raw_length;
    rc = source_open(&src, s, r);
    if (!rc)
        rc = source_read(&src, n, &raw, r);
    if (!rc)
        rc = source_finish(&src, r);
    if (rc) {
        source_close(&src);
        return rc;
    }
    switch (s->info->kind) {
    case CODEC_NAMES_PLAIN:
        rc = decode_names_plain(raw, n, h->n_classes, p, w, r);
        break;
    case CODEC_NAMES_TEXT:
        rc = decode_names_text(raw, n, h->n_classes, p, w, r);
        break;
    case CODEC_TASK_PLAIN:
        rc = check_utf8(raw, n, w, r);
        if (!rc && !(p->task = copy_text(raw, n)))
            rc = fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory", w);
        if (!rc)
            p->pub.task_name_length = n;
        break;
    case CODEC_METADATA_JSON: {
        uint64_t items = 0;
        for (size_t i = 0; i < n; i++)
            items += raw[i] == '[' || raw[i] == '{' || raw[i] == ',' || raw[i] == ':';
        if (items > o->limits[PLADA_MAX_METADATA_ITEMS]) {
            rc = fail(r, PLADA_LIMIT_EXCEEDED, "%s: %llu JSON items, above max_metadata_items = %llu", w,
                      (unsigned long long)items, (unsigned long long)o->limits[PLADA_MAX_METADATA_ITEMS]);
            break;
        }
        if ((rc = check_utf8(raw, n, w, r)) != 0)
            break;
        if (n >= 3 && raw[0] == 0xEF && raw[1] == 0xBB && raw[2] == 0xBF) {
            rc = fail(r, PLADA_FORMAT_ERROR, "%s: starts with a byte-order mark", w);
            break;
        }
        char why[160];
        int json = pl_json_check(raw, n, why, sizeof why);
        if (json < 0)
            rc = fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory while checking the JSON", w);
        else if (json > 0)
            rc = fail(r, PLADA_FORMAT_ERROR, "%s: %s", w, why);
        else if (!(p->metadata = copy_text(raw, n)))
            rc = fail(r, PLADA_OUT_OF_MEMORY, "%s: out of memory", w);
        else
            p->pub.metadata_json_length = n;
        break;
    }
    default:
        break;
    }
    source_close(&src);
    return rc;
}

/* ---- step 8a ------------------------------------------------------------------------------------ */
static int resolve_codecs(section *sections, const plada_header *h, const report *r)
{
    unsigned n = h->section_count;
    for (unsigned i = 0; i < n; i++) {
        section *s = &sections[i];
        char w[96];
        where(s, w, sizeof w);
        const codec_info *c = find_codec(s->type, s->codec);
        if (!c || s->compression > 1) {
            if (s->type & ANCILLARY_BIT)
                continue; /* a decoder skips an ancillary section it does not understand */
            if (!c)
                return fail(r, PLADA_UNSUPPORTED_FEATURE, "%s uses unknown codec id %u", w, s->codec);
            return fail(r, PLADA_UNSUPPORTED_FEATURE, "%s uses unknown compression id %u", w, s->compression);
        }
        if (c->introduced > h->version_minor)
            return fail(r, PLADA_FORMAT_ERROR,
                        "%s uses codec '%s' of format 1.%u, but the header declares format 1.%u", w, c->name,
                        c->introduced, h->version_minor);
        if (c->uncompressed_only && s->compression != 0)
            return fail(r, PLADA_FORMAT_ERROR, "%s uses codec '%s' with compression; this codec's body is stored "
                        "uncompressed", w, c->name);
        s->info = c;
    }
    for (unsigned i = 0; i < n; i++) {
        const section *s = &sections[i];
        if (!s->info || !s->info->partner_type)
            continue;
        const section *other = NULL;
        for (unsigned j = 0; j < n; j++)
            if (sections[j].type == s->info->partner_type && sections[j].info)
                other = &sections[j];
        if (!other || other->info->id != s->info->partner_id) {
            char w[96];
            where(s, w, sizeof w);
            return fail(r, PLADA_FORMAT_ERROR, "%s uses codec '%s', which needs the %s section's codec id %u", w,
                        s->info->name, section_name(s->info->partner_type), s->info->partner_id);
        }
    }
    return PLADA_OK;
}

static int decode_steps(const plada_options *o, const uint8_t *d, size_t size, payload_impl *p, const report *r)
{
    plada_header *h = &p->pub.header;
    int rc = parse_header(d, size, h, r); /* steps 1-4 */
    if (rc)
        return rc;
    if (h->count > o->limits[PLADA_MAX_COUNT]) /* step 5 */
        return fail(r, PLADA_LIMIT_EXCEEDED, "count at offset 24 is %llu, above max_count = %llu",
                    (unsigned long long)h->count, (unsigned long long)o->limits[PLADA_MAX_COUNT]);
    section sections[MAX_SECTIONS];
    rc = parse_sections(d, h, sections, 1, o->limits[PLADA_MAX_SECTION_BYTES], r); /* step 6 */
    if (rc)
        return rc;
    if (o->has_reference) { /* step 7 */
        if (h->n_ref != o->reference_n)
            return fail(r, PLADA_REFERENCE_MISMATCH,
                        "payload indexes a reference set of %llu items; the local one has %llu",
                        (unsigned long long)h->n_ref, (unsigned long long)o->reference_n);
        if (!h->bound)
            return fail(r, PLADA_REFERENCE_MISMATCH,
                        "payload is not bound to a reference set (all-zero fingerprint), so it cannot be checked "
                        "against the local one");
        if (memcmp(h->fingerprint, o->reference_fingerprint, 32) != 0)
            return fail(r, PLADA_REFERENCE_MISMATCH,
                        "payload was made for reference set %02x%02x%02x%02x%02x%02x%02x%02x..., the local one is "
                        "%02x%02x%02x%02x%02x%02x%02x%02x...", h->fingerprint[0], h->fingerprint[1],
                        h->fingerprint[2], h->fingerprint[3], h->fingerprint[4], h->fingerprint[5],
                        h->fingerprint[6], h->fingerprint[7], o->reference_fingerprint[0],
                        o->reference_fingerprint[1], o->reference_fingerprint[2], o->reference_fingerprint[3],
                        o->reference_fingerprint[4], o->reference_fingerprint[5], o->reference_fingerprint[6],
                        o->reference_fingerprint[7]);
    }
    if ((rc = resolve_codecs(sections, h, r)) != 0) /* step 8a */
        return rc;
    /* step 8b: the critical bounds, then both bodies together, then each ancillary section */
    const section *index = NULL, *labels = NULL;
    for (unsigned i = 0; i < h->section_count; i++) {
        if (sections[i].type == TYPE_INDEX)
            index = &sections[i];
        else if (sections[i].type == TYPE_LABELS)
            labels = &sections[i];
    }
    if ((rc = check_bounds(index, h, r)) != 0 || (rc = check_bounds(labels, h, r)) != 0)
        return rc;
    if ((rc = decode_critical(index, labels, h, p, r)) != 0)
        return rc;
    for (unsigned i = 0; i < h->section_count; i++) {
        const section *s = &sections[i];
        if ((s->type & ANCILLARY_BIT) && s->info && (rc = decode_ancillary(s, h, o, p, r)) != 0)
            return rc;
    }
    return PLADA_OK;
}

int plada_decode(const plada_options *options, const void *data, size_t size, plada_payload **out,
                 char *message, size_t message_size)
{
    report r = {message, message_size};
    if (message && message_size)
        message[0] = 0;
    if (!out)
        return fail(&r, PLADA_INVALID_ARGUMENT, "plada_decode: out is NULL");
    *out = NULL;
    if (!data && size)
        return fail(&r, PLADA_INVALID_ARGUMENT, "plada_decode: data is NULL");
    plada_options defaults;
    if (!options) {
        options_defaults(&defaults);
        options = &defaults;
    }
    payload_impl *p = calloc(1, sizeof *p);
    if (!p)
        return fail(&r, PLADA_OUT_OF_MEMORY, "out of memory");
    static const uint8_t empty[1] = {0};
    int rc = decode_steps(options, data ? data : empty, size, p, &r);
    if (rc) {
        plada_payload_free(&p->pub);
        return rc;
    }
    p->pub.indices = p->indices;
    p->pub.labels = p->labels;
    p->pub.class_names = (const char *const *)p->names;
    p->pub.class_name_lengths = p->name_lengths;
    p->pub.task_name = p->task;
    p->pub.metadata_json = p->metadata;
    *out = &p->pub;
    return PLADA_OK;
}

/* ---- inspect ------------------------------------------------------------------------------------ */
typedef struct info_impl {
    plada_info pub;
    plada_section sections[MAX_SECTIONS];
} info_impl;

int plada_inspect(const void *data, size_t size, plada_info **out, char *message, size_t message_size)
{
    report r = {message, message_size};
    if (message && message_size)
        message[0] = 0;
    if (!out)
        return fail(&r, PLADA_INVALID_ARGUMENT, "plada_inspect: out is NULL");
    *out = NULL;
    if (!data && size)
        return fail(&r, PLADA_INVALID_ARGUMENT, "plada_inspect: data is NULL");
    static const uint8_t empty[1] = {0};
    const uint8_t *d = data ? data : empty;
    info_impl *info = calloc(1, sizeof *info);
    if (!info)
        return fail(&r, PLADA_OUT_OF_MEMORY, "out of memory");
    section sections[MAX_SECTIONS];
    int rc = parse_header(d, size, &info->pub.header, &r);
    if (!rc)
        rc = parse_sections(d, &info->pub.header, sections, 0, 0, &r);
    if (rc) {
        free(info);
        return rc;
    }
    for (unsigned i = 0; i < info->pub.header.section_count; i++) {
        const section *s = &sections[i];
        const codec_info *c = find_codec(s->type, s->codec);
        plada_section *t = &info->sections[i];
        t->type = s->type;
        t->codec = s->codec;
        t->compression = s->compression;
        t->raw_length = s->raw_length;
        t->stored_length = s->stored_length;
        t->offset = s->offset;
        t->critical = !(s->type & ANCILLARY_BIT);
        t->understood = c != NULL && s->compression <= 1;
        t->name = section_name(s->type);
        t->codec_name = c ? c->name : "unknown";
        t->compression_name = compression_name(s->compression);
    }
    info->pub.section_count = info->pub.header.section_count;
    info->pub.sections = info->sections;
    *out = &info->pub;
    return PLADA_OK;
}

void plada_info_free(plada_info *info)
{
    free(info);
}
