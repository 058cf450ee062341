/* plada-c: decode or inspect a PLADA payload with libplada; the protocol of `plada conformance`.
 *
 *   plada-c decode FILE [--json] [--reference-n N --fingerprint HEX] [--max-count N]
 *                       [--max-section-bytes N] [--max-ancillary-bytes N] [--max-metadata-items N]
 *   plada-c inspect FILE [--json]
 *
 * With --json, decode prints the object of the test vectors' .json files (FORMAT.md 12) on one
 * line; the exit status names the error class (the table in usage() and README.md) and a
 * refusal prints one line on stderr. */
#include "plada.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Exit statuses: 0 ok; 10 + the 9.1 class; 2, 3, 4 for the tool's own failures. */
#define EXIT_USAGE 2
#define EXIT_IO 3
#define EXIT_INTERNAL 4
#define EXIT_CLASS_BASE 9 /* FormatError (1) -> 10 ... ReferenceMismatch (8) -> 17 */
/* Like plada_codec's read_payload: a file beyond this is refused before it is read (13). */
#define MAX_FILE_BYTES (UINT64_C(1) << 30)

static const char USAGE[] =
    "usage: plada-c decode FILE [--json] [--reference-n N --fingerprint HEX]\n"
    "                      [--max-count N] [--max-section-bytes N]\n"
    "                      [--max-ancillary-bytes N] [--max-metadata-items N]\n"
    "       plada-c inspect FILE [--json]\n"
    "       plada-c --version\n"
    "\n"
    "Decode (or only frame-check) the PLADA payload in FILE ('-' for stdin) with libplada.\n"
    "decode --json prints the decoded content as one JSON object: format_version, n_ref,\n"
    "n_classes, count, fingerprint, indices, labels, class_names, task_name, metadata\n"
    "(spec/FORMAT.md 12). Limits default to FORMAT.md 5.5; --reference-n and --fingerprint\n"
    "(64 hex digits) bind the decode to a reference set (step 7).\n"
    "\n"
    "exit status (one line on stderr for every status but 0):\n"
    "   0  ok\n"
    "  10  FormatError\n"
    "  11  Truncated\n"
    "  12  TrailingData\n"
    "  13  Checksum\n"
    "  14  UnsupportedVersion\n"
    "  15  UnsupportedFeature\n"
    "  16  LimitExceeded (also a FILE above 2^30 bytes)\n"
    "  17  ReferenceMismatch\n"
    "   2  usage error\n"
    "   3  FILE cannot be read\n"
    "   4  out of memory or internal error\n";

static int usage_error(const char *what)
{
    fprintf(stderr, "plada-c: usage: %s (see plada-c --help)\n", what);
    return EXIT_USAGE;
}

static int exit_for(int result)
{
    if (result >= PLADA_FORMAT_ERROR && result <= PLADA_REFERENCE_MISMATCH)
        return EXIT_CLASS_BASE + result;
    return EXIT_INTERNAL;
}

/* ---- buffered output --------------------------------------------------------------------- */
typedef struct out_buf {
    char data[1 << 16];
    size_t len;
    int failed;
} out_buf;

static void flush(out_buf *o)
{
    if (o->len && fwrite(o->data, 1, o->len, stdout) != o->len)
        o->failed = 1;
    o->len = 0;
}

static void put(out_buf *o, const char *s, size_t n)
{
    while (n) {
        if (o->len == sizeof o->data)
            flush(o);
        size_t m = sizeof o->data - o->len;
        if (m > n)
            m = n;
        memcpy(o->data + o->len, s, m);
        o->len += m;
        s += m;
        n -= m;
    }
}

static void puts_(out_buf *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(out_buf *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

static void put_json_string(out_buf *o, const char *s, size_t n)
{
    static const char HEX[] = "0123456789abcdef";
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15], 0};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            put(o, esc, 2);
        } else {
            put(o, esc, 6);
        }
    }
    put(o, s + run, n - run);
    put(o, "\"", 1);
}

static void put_fingerprint(out_buf *o, const plada_header *h)
{
    if (!h->bound) {
        puts_(o, "null");
        return;
    }
    char hex[67];
    hex[0] = '"';
    for (int i = 0; i < 32; i++)
        snprintf(hex + 1 + 2 * i, 3, "%02x", h->fingerprint[i]);
    hex[65] = '"';
    hex[66] = 0;
    puts_(o, hex);
}

static void put_header_fields(out_buf *o, const plada_header *h)
{
    char version[16];
    snprintf(version, sizeof version, "\"%u.%u\"", h->version_major, h->version_minor);
    puts_(o, "{\"format_version\": ");
    puts_(o, version);
    puts_(o, ", \"n_ref\": ");
    put_u64(o, h->n_ref);
    puts_(o, ", \"n_classes\": ");
    put_u64(o, h->n_classes);
    puts_(o, ", \"count\": ");
    put_u64(o, h->count);
    puts_(o, ", \"fingerprint\": ");
    put_fingerprint(o, h);
}

static void print_payload_json(out_buf *o, const plada_payload *p)
{
    const plada_header *h = &p->header;
    put_header_fields(o, h);
    puts_(o, ", \"indices\": [");
    for (uint64_t j = 0; j < h->count; j++) {
        if (j)
            put(o, ",", 1);
        put_u64(o, p->indices[j]);
    }
    puts_(o, "], \"labels\": [");
    for (uint64_t j = 0; j < h->count; j++) {
        if (j)
            put(o, ",", 1);
        put_u64(o, p->labels[j]);
    }
    puts_(o, "], \"class_names\": ");
    if (!p->class_names) {
        puts_(o, "null");
    } else {
        put(o, "[", 1);
        for (uint32_t i = 0; i < h->n_classes; i++) {
            if (i)
                put(o, ", ", 2);
            put_json_string(o, p->class_names[i], p->class_name_lengths[i]);
        }
        put(o, "]", 1);
    }
    puts_(o, ", \"task_name\": ");
    if (p->task_name)
        put_json_string(o, p->task_name, p->task_name_length);
    else
        puts_(o, "null");
    puts_(o, ", \"metadata\": ");
    /* The body is a JSON object already checked against 5.7: its own text is its value. */
    if (p->metadata_json)
        put(o, p->metadata_json, p->metadata_json_length);
    else
        puts_(o, "null");
    puts_(o, "}\n");
}

static void print_payload_summary(out_buf *o, const plada_payload *p)
{
    const plada_header *h = &p->header;
    char line[256];
    snprintf(line, sizeof line, "format %u.%u, n_ref %llu, n_classes %u, count %llu, %s", h->version_major,
             h->version_minor, (unsigned long long)h->n_ref, h->n_classes, (unsigned long long)h->count,
             h->bound ? "bound to " : "unbound");
    puts_(o, line);
    if (h->bound)
        put_fingerprint(o, h);
    snprintf(line, sizeof line, "; class names: %s, task name: %s, metadata: %s\n", p->class_names ? "yes" : "no",
             p->task_name ? "yes" : "no", p->metadata_json ? "yes" : "no");
    puts_(o, line);
}

static void print_info(out_buf *o, const plada_info *info, int json)
{
    const plada_header *h = &info->header;
    char line[512];
    if (!json) {
        snprintf(line, sizeof line, "format %u.%u, n_ref %llu, n_classes %u, count %llu, total_length %llu, ",
                 h->version_major, h->version_minor, (unsigned long long)h->n_ref, h->n_classes,
                 (unsigned long long)h->count, (unsigned long long)h->total_length);
        puts_(o, line);
        if (h->bound) {
            puts_(o, "fingerprint ");
            put_fingerprint(o, h);
        } else {
            puts_(o, "unbound");
        }
        puts_(o, "\n  type    section       codec           compression   raw_length  stored_length  offset\n");
        for (size_t i = 0; i < info->section_count; i++) {
            const plada_section *s = &info->sections[i];
            snprintf(line, sizeof line, "  0x%04x  %-12s  %-3u %-11s  %-3u %-8s  %10llu  %13llu  %6llu%s\n",
                     s->type, s->name, s->codec, s->codec_name, s->compression, s->compression_name,
                     (unsigned long long)s->raw_length, (unsigned long long)s->stored_length,
                     (unsigned long long)s->offset, s->understood ? "" : "  (not understood: skipped if ancillary)");
            puts_(o, line);
        }
        return;
    }
    /* The shape of plada_codec's PayloadInfo.to_dict(). */
    put_header_fields(o, h);
    puts_(o, ", \"total_length\": ");
    put_u64(o, h->total_length);
    puts_(o, ", \"sections\": [");
    for (size_t i = 0; i < info->section_count; i++) {
        const plada_section *s = &info->sections[i];
        char name[32], codec[32], compression[32];
        if (strcmp(s->name, "unknown") == 0)
            snprintf(name, sizeof name, "unknown-0x%04x", s->type);
        else
            snprintf(name, sizeof name, "%s", s->name);
        if (strcmp(s->codec_name, "unknown") == 0)
            snprintf(codec, sizeof codec, "unknown-%u", s->codec);
        else
            snprintf(codec, sizeof codec, "%s", s->codec_name);
        if (strcmp(s->compression_name, "unknown") == 0)
            snprintf(compression, sizeof compression, "unknown-%u", s->compression);
        else
            snprintf(compression, sizeof compression, "%s", s->compression_name);
        snprintf(line, sizeof line,
                 "%s{\"type\": %u, \"name\": \"%s\", \"critical\": %s, \"codec\": %u, \"codec_name\": \"%s\", "
                 "\"compression\": %u, \"compression_name\": \"%s\", \"raw_length\": %llu, \"stored_length\": %llu, "
                 "\"offset\": %llu, \"understood\": %s}", i ? ", " : "", s->type, name,
                 s->critical ? "true" : "false", s->codec, codec, s->compression, compression,
                 (unsigned long long)s->raw_length, (unsigned long long)s->stored_length,
                 (unsigned long long)s->offset, s->understood ? "true" : "false");
        puts_(o, line);
    }
    puts_(o, "]}\n");
}

/* ---- input --------------------------------------------------------------------------------- */
static int read_input(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "plada-c: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_IO;
    }
    size_t cap = 1 << 16, len = 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > MAX_FILE_BYTES) {
            fprintf(stderr, "plada-c: LimitExceeded: %s is %lld bytes, above the reader's limit of 2^30\n", path,
                    (long long)st.st_size);
            if (f != stdin)
                fclose(f);
            return EXIT_CLASS_BASE + PLADA_LIMIT_EXCEEDED;
        }
        cap = (size_t)st.st_size + 1;
    }
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "plada-c: out of memory reading %s\n", path);
            if (f != stdin)
                fclose(f);
            return EXIT_INTERNAL;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        if ((uint64_t)len > MAX_FILE_BYTES) {
            fprintf(stderr, "plada-c: LimitExceeded: %s holds more than the reader's limit of 2^30 bytes\n", path);
            free(buf);
            if (f != stdin)
                fclose(f);
            return EXIT_CLASS_BASE + PLADA_LIMIT_EXCEEDED;
        }
        cap *= 2;
        uint8_t *more = realloc(buf, cap);
        if (!more)
            free(buf);
        buf = more;
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "plada-c: cannot read %s\n", path);
        free(buf);
        return EXIT_IO;
    }
    *data = buf;
    *size = len;
    return 0;
}

static int parse_u64(const char *text, uint64_t *out)
{
    if (!*text || *text == '-')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

static int parse_hex32(const char *text, uint8_t out[32])
{
    if (strlen(text) != 64)
        return 0;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(text + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", text[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", text[2 * i + 1]))
            return 0;
        out[i] = (uint8_t)v;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        unsigned v = plada_format_version();
        printf("plada-c (libplada ABI %d), reads PLADA format %u.0 .. %u.%u\n", plada_abi_version(), v >> 8, v >> 8,
               v & 0xFF);
        return 0;
    }
    if (argc < 3)
        return usage_error("a command (decode or inspect) and a FILE are required");
    int decode = strcmp(argv[1], "decode") == 0;
    if (!decode && strcmp(argv[1], "inspect") != 0)
        return usage_error("the command is decode or inspect");
    const char *path = NULL;
    int json = 0, have_n = 0, have_fp = 0;
    uint64_t reference_n = 0;
    uint8_t fingerprint[32];
    plada_options *options = plada_options_new();
    if (!options) {
        fprintf(stderr, "plada-c: out of memory\n");
        return EXIT_INTERNAL;
    }
    static const struct {
        const char *flag;
        plada_limit limit;
    } LIMITS[] = {{"--max-count", PLADA_MAX_COUNT},
                  {"--max-section-bytes", PLADA_MAX_SECTION_BYTES},
                  {"--max-ancillary-bytes", PLADA_MAX_ANCILLARY_BYTES},
                  {"--max-metadata-items", PLADA_MAX_METADATA_ITEMS}};
    int status = 0;
    for (int i = 2; i < argc && !status; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int matched = 0;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        for (size_t l = 0; l < sizeof LIMITS / sizeof *LIMITS; l++) {
            if (strcmp(a, LIMITS[l].flag) == 0 && decode) {
                uint64_t v;
                if (!value || !parse_u64(value, &v))
                    status = usage_error("a limit takes a non-negative integer");
                else
                    plada_options_set_limit(options, LIMITS[l].limit, v);
                i++;
                matched = 1;
            }
        }
        if (matched)
            continue;
        if (strcmp(a, "--reference-n") == 0 && decode) {
            if (!value || !parse_u64(value, &reference_n))
                status = usage_error("--reference-n takes a non-negative integer");
            have_n = 1;
            i++;
        } else if (strcmp(a, "--fingerprint") == 0 && decode) {
            if (!value || !parse_hex32(value, fingerprint))
                status = usage_error("--fingerprint takes 64 hex digits");
            have_fp = 1;
            i++;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "plada-c: usage: unknown option %s (see plada-c --help)\n", a);
            status = EXIT_USAGE;
        } else if (path) {
            status = usage_error("one FILE only");
        } else {
            path = a;
        }
    }
    if (!status && !path)
        status = usage_error("a FILE is required");
    if (!status && have_n != have_fp)
        status = usage_error("--reference-n and --fingerprint go together");
    if (status) {
        plada_options_free(options);
        return status;
    }
    if (have_n)
        plada_options_set_reference(options, reference_n, fingerprint);
    uint8_t *data = NULL;
    size_t size = 0;
    if ((status = read_input(path, &data, &size)) != 0) {
        plada_options_free(options);
        return status;
    }
    char message[PLADA_MESSAGE_SIZE];
    int rc;
    static out_buf o;
    if (decode) {
        plada_payload *p;
        rc = plada_decode(options, data, size, &p, message, sizeof message);
        if (rc == PLADA_OK) {
            if (json)
                print_payload_json(&o, p);
            else
                print_payload_summary(&o, p);
            plada_payload_free(p);
        }
    } else {
        plada_info *info;
        rc = plada_inspect(data, size, &info, message, sizeof message);
        if (rc == PLADA_OK) {
            print_info(&o, info, json);
            plada_info_free(info);
        }
    }
    free(data);
    plada_options_free(options);
    if (rc != PLADA_OK) {
        fprintf(stderr, "plada-c: %s: %s: %s\n", plada_result_name(rc), path, message);
        return exit_for(rc);
    }
    flush(&o);
    if (o.failed || fflush(stdout) != 0) {
        fprintf(stderr, "plada-c: cannot write the output\n");
        return EXIT_IO;
    }
    return 0;
}
