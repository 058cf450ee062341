/* plada_tar.c: the header walk and sample rules of a WebDataset-style tar shard
 * (spec/REFERENCE.md section 3.4), the hot loop of plada_codec/kinds/_tar_c.py.
 *
 * The executable reference is plada_codec/kinds/tar.py: `_walk` +
 * `_check_checksums` (the headers) and `_samples` (the rules). This file
 * decides only what those decide without tarfile, and answers UNSURE or RULE
 * for everything else, so that the Python path runs and words the error: the
 * C path never needs a message of its own. Contract in plada_core.h. */
#include "plada_core.h"

#include <string.h>

#define TAR_BLOCK 512
#define TAR_OK 0
#define TAR_UNSURE 1
#define TAR_RULE 2
#define TAR_ARG 3
/* Longest ustar name: a 155-byte prefix, "/", a 100-byte name. */
#define TAR_JOINED (155 + 1 + 100)
/* Linear probes before giving the shard to Python: at a load of 1/4 a longer
 * run means keys chosen to collide, and Python's set is the safe answer. */
#define TAR_MAX_PROBES 128

typedef struct span {
    const uint8_t *p;
    size_t n;
    int set;
} span;

static const uint8_t zero_block[TAR_BLOCK];

static size_t nts_length(const uint8_t *p, size_t n)
{
    const uint8_t *nul = memchr(p, 0, n);
    return nul ? (size_t)(nul - p) : n;
}

/* tarfile's checksum, as _check_checksums states it: the stored field is
 * spaces, octal digits, spaces, up to a NUL, and equals the unsigned or the
 * signed sum of the header with the field read as eight spaces. */
static int checksum_holds(const uint8_t *h)
{
    uint32_t unsigned_sum = 0;
    int32_t signed_sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++) {
        unsigned_sum += h[i];
        signed_sum += (int8_t)h[i];
    }
    for (size_t i = 148; i < 156; i++) {
        unsigned_sum -= h[i];
        signed_sum -= (int8_t)h[i];
    }
    unsigned_sum += 8 * ' ';
    signed_sum += 8 * ' ';
    uint32_t stored = 0;
    int state = 0; /* 0: leading spaces, 1: digits, 2: trailing spaces */
    for (size_t i = 148; i < 156 && h[i] != 0; i++) {
        uint8_t c = h[i];
        if (c == ' ') {
            if (state == 1)
                state = 2;
        } else if (c >= '0' && c <= '7') {
            if (state == 2)
                return 0; /* a space between digits */
            state = 1;
            stored = stored * 8 + (uint32_t)(c - '0');
        } else {
            return 0;
        }
    }
    return stored == unsigned_sum || (int64_t)stored == (int64_t)signed_sum;
}

/* The size field (12 bytes): plain octal between spaces up to a NUL, or
 * positive base-256 (first byte 0x80). Returns 0 and *out, or -1 for anything
 * else (negative base-256, other whitespace, signs, non-octal): Python decides
 * those. A value of 2**64 or more is returned as UINT64_MAX (past any shard). */
static int size_field(const uint8_t *f, uint64_t *out)
{
    uint64_t value = 0;
    if (f[0] == 0x80) {
        for (size_t i = 1; i < 12; i++) {
            if (value >> 56) {
                *out = UINT64_MAX;
                return 0;
            }
            value = (value << 8) | f[i];
        }
        *out = value;
        return 0;
    }
    if (f[0] == 0xff)
        return -1; /* negative: tarfile's walk words the error */
    int state = 0;
    for (size_t i = 0; i < 12 && f[i] != 0; i++) {
        uint8_t c = f[i];
        if (c == ' ') {
            if (state == 1)
                state = 2;
        } else if (c >= '0' && c <= '7') {
            if (state == 2)
                return -1;
            state = 1;
            value = value * 8 + (uint64_t)(c - '0'); /* 12 digits: 36 bits at most */
        } else {
            return -1;
        }
    }
    *out = value;
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* The "path" record of a pax block (the last one wins), as _pax_path reads it:
 * records "LENGTH KEYWORD=VALUE\n" until the block ends or only NULs remain.
 * Returns -1 for a malformed record and for size, hdrcharset or GNU.sparse
 * records (they move data or change the name's encoding). */
static int pax_path(const uint8_t *r, size_t n, span *path)
{
    size_t pos = 0;
    path->set = 0;
    while (pos < n) {
        /* The record head, as the pattern (\d+) ([^=]+)= matches it at pos. */
        size_t i = pos;
        uint64_t length = 0;
        while (i < n && r[i] >= '0' && r[i] <= '9') {
            /* Saturates past n: such a record cannot end inside the block. */
            length = length > n / 10 ? (uint64_t)n + 1 : length * 10 + (uint64_t)(r[i] - '0');
            i++;
        }
        const uint8_t *equals = NULL;
        if (i > pos && i + 1 < n && r[i] == ' ' && r[i + 1] != '=')
            equals = memchr(r + i + 1, '=', n - (i + 1));
        if (equals == NULL) {
            if (all_zero(r + pos, n - pos))
                return 0; /* padding */
            return -1;
        }
        if (length < 1 || length > n - pos || r[pos + length - 1] != '\n')
            return -1;
        const uint8_t *keyword = r + i + 1;
        size_t keyword_length = (size_t)(equals - keyword);
        const uint8_t *value = equals + 1;
        const uint8_t *value_end = r + pos + length - 1;
        if (keyword_length == 4 && memcmp(keyword, "path", 4) == 0) {
            path->p = value;
            path->n = value_end > value ? (size_t)(value_end - value) : 0;
            path->set = 1;
        } else if ((keyword_length == 4 && memcmp(keyword, "size", 4) == 0)
                   || (keyword_length == 10 && memcmp(keyword, "hdrcharset", 10) == 0)
                   || (keyword_length >= 10 && memcmp(keyword, "GNU.sparse", 10) == 0)) {
            return -1;
        }
        pos += (size_t)length;
    }
    return 0;
}

static uint8_t ascii_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Whether ext (ASCII case ignored) is one of the NUL-separated lowercase names of list. */
static int is_extension(const uint8_t *ext, size_t n, const uint8_t *list, size_t list_len)
{
    size_t start = 0;
    while (start < list_len) {
        size_t end = start + nts_length(list + start, list_len - start);
        if (end - start == n && n > 0) {
            size_t i = 0;
            while (i < n && ascii_lower(ext[i]) == list[start + i])
                i++;
            if (i == n)
                return 1;
        }
        start = end + 1;
    }
    return 0;
}

/* image_extension's strength of an extension (the base name after its first "."). */
static int strength(const uint8_t *ext, size_t n, const uint8_t *list, size_t list_len)
{
    if (is_extension(ext, n, list, list_len))
        return 2;
    size_t last = n;
    while (last > 0 && ext[last - 1] != '.')
        last--;
    return last > 0 && is_extension(ext + last, n - last, list, list_len) ? 1 : 0;
}

static uint64_t key_hash(const uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    h ^= h >> 33; /* murmur3's finaliser: spreads the low bits the table index uses */
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9cc1a85ec53);
    h ^= h >> 33;
    return h;
}

typedef struct listing {
    const uint8_t *extensions;
    size_t extensions_len;
    uint8_t *keys;
    size_t keys_cap;
    int64_t *key_offsets;
    uint8_t *names;
    size_t names_cap;
    int64_t *name_offsets;
    int64_t *offsets;
    int64_t *sizes;
    size_t samples_cap;
    uint32_t *table;
    size_t table_len;
    uint64_t seed;
    size_t count;    /* samples finished */
    int in_sample;   /* a sample is open: its key is keys[key_offsets[count]..key_end) */
    size_t key_end;
    int best;        /* the open sample's strongest image candidate so far */
    size_t best_count;
    span best_name;
    uint64_t best_offset;
    uint64_t best_size;
    uint8_t best_buffer[TAR_JOINED];
} listing;

/* The open sample's image: exactly one candidate at the strongest strength. */
static int finish_sample(listing *s)
{
    if (s->best_count != 1)
        return TAR_RULE; /* no image, or two */
    size_t at = (size_t)s->name_offsets[s->count];
    if (s->best_name.n > s->names_cap - at)
        return TAR_UNSURE;
    memcpy(s->names + at, s->best_name.p, s->best_name.n);
    s->name_offsets[s->count + 1] = (int64_t)(at + s->best_name.n);
    s->key_offsets[s->count + 1] = (int64_t)s->key_end;
    s->offsets[s->count] = (int64_t)s->best_offset;
    s->sizes[s->count] = (int64_t)s->best_size;
    s->count++;
    s->in_sample = 0;
    return TAR_OK;
}

/* Opens a sample under key; RULE when the key was the key of an earlier sample. */
static int open_sample(listing *s, const uint8_t *key, size_t n)
{
    if (s->count >= s->samples_cap)
        return TAR_UNSURE;
    size_t at = (size_t)s->key_offsets[s->count];
    if (n > s->keys_cap - at)
        return TAR_UNSURE;
    size_t mask = s->table_len - 1;
    size_t slot = (size_t)key_hash(key, n, s->seed) & mask;
    for (size_t probe = 0;; probe++, slot = (slot + 1) & mask) {
        if (probe == TAR_MAX_PROBES)
            return TAR_UNSURE;
        uint32_t entry = s->table[slot];
        if (entry == 0)
            break;
        size_t a = (size_t)s->key_offsets[entry - 1], b = (size_t)s->key_offsets[entry];
        if (b - a == n && memcmp(s->keys + a, key, n) == 0)
            return TAR_RULE;
    }
    s->table[slot] = (uint32_t)(s->count + 1);
    memcpy(s->keys + at, key, n);
    s->key_end = at + n;
    s->in_sample = 1;
    s->best = 0;
    s->best_count = 0;
    return TAR_OK;
}

/* One regular member through the rules of _samples. */
static int add_member(listing *s, span name, uint64_t offset, uint64_t size)
{
    size_t slash = name.n;
    while (slash > 0 && name.p[slash - 1] != '/')
        slash--;
    if (slash == name.n)
        return TAR_OK; /* a folder entry written as a file */
    const uint8_t *dot_at = memchr(name.p + slash, '.', name.n - slash);
    size_t dot = dot_at ? (size_t)(dot_at - name.p) : name.n;
    if (dot == slash)
        return TAR_OK; /* a hidden member */
    size_t key_start = s->in_sample ? (size_t)s->key_offsets[s->count] : 0;
    if (!s->in_sample || s->key_end - key_start != dot || memcmp(s->keys + key_start, name.p, dot) != 0) {
        int status;
        if (s->in_sample && (status = finish_sample(s)) != TAR_OK)
            return status;
        if ((status = open_sample(s, name.p, dot)) != TAR_OK)
            return status;
    }
    const uint8_t *ext = dot_at ? dot_at + 1 : name.p + name.n;
    int found = strength(ext, (size_t)(name.p + name.n - ext), s->extensions, s->extensions_len);
    if (found == 0 || found < s->best)
        return TAR_OK;
    if (found == s->best) {
        s->best_count++;
        return TAR_OK;
    }
    s->best = found;
    s->best_count = 1;
    s->best_offset = offset;
    s->best_size = size;
    s->best_name = name;
    if (name.n <= TAR_JOINED) {
        /* The name may live in the caller's joining buffer, rewritten by the next member. */
        memcpy(s->best_buffer, name.p, name.n);
        s->best_name.p = s->best_buffer;
    }
    return TAR_OK;
}

int plada_tar_list(const uint8_t *src, size_t src_len, const uint8_t *extensions, size_t extensions_len,
                   uint8_t *keys, size_t keys_cap, int64_t *key_offsets, uint8_t *names, size_t names_cap,
                   int64_t *name_offsets, int64_t *offsets, int64_t *sizes, size_t samples_cap,
                   uint32_t *table, size_t table_len, uint64_t seed, size_t *count)
{
    *count = 0;
    if (table_len == 0 || (table_len & (table_len - 1)) != 0 || table_len <= samples_cap
        || table_len > UINT32_MAX)
        return TAR_ARG;
    listing s;
    memset(&s, 0, sizeof s);
    s.extensions = extensions;
    s.extensions_len = extensions_len;
    s.keys = keys;
    s.keys_cap = keys_cap;
    s.key_offsets = key_offsets;
    s.names = names;
    s.names_cap = names_cap;
    s.name_offsets = name_offsets;
    s.offsets = offsets;
    s.sizes = sizes;
    s.samples_cap = samples_cap;
    s.table = table;
    s.table_len = table_len;
    s.seed = seed;
    key_offsets[0] = 0;
    name_offsets[0] = 0;

    uint8_t joined[TAR_JOINED];
    span long_name = {NULL, 0, 0}, local_path = {NULL, 0, 0}, global_path = {NULL, 0, 0};
    size_t offset = 0;
    /* Every pass moves offset on by at least one block: at most src_len / 512 passes. */
    for (;;) {
        if (src_len < TAR_BLOCK || offset > src_len - TAR_BLOCK)
            return TAR_UNSURE; /* cut, or no end marker */
        const uint8_t *h = src + offset;
        if (memcmp(h, zero_block, TAR_BLOCK) == 0)
            break;
        if (!checksum_holds(h))
            return TAR_UNSURE;
        uint64_t size;
        if (size_field(h + 124, &size) != 0)
            return TAR_UNSURE;
        size_t start = offset + TAR_BLOCK;
        if (size > src_len - start || ((size + TAR_BLOCK - 1) & ~(uint64_t)(TAR_BLOCK - 1)) > src_len - start)
            return TAR_UNSURE; /* data past the end */
        size_t end = start + (size_t)((size + TAR_BLOCK - 1) & ~(uint64_t)(TAR_BLOCK - 1));
        uint8_t kind = h[156];
        if (kind == 0) {
            /* An old-style regular member whose own name field ends in '/' is a folder to
               tarfile, which then skips no data: leave that reading to it. */
            size_t own = nts_length(h, 100);
            if (own && h[own - 1] == '/')
                return TAR_UNSURE;
        }
        if (kind == '0' || kind == '7' || kind == 0) {
            span name;
            if (local_path.set) {
                name = local_path;
            } else if (long_name.set) {
                name = long_name;
            } else {
                size_t n = nts_length(h, 100);
                name.p = h;
                name.n = n;
                name.set = 1;
                if (h[345]) { /* a ustar prefix: tarfile joins it for every non-GNU type */
                    size_t p = nts_length(h + 345, 155);
                    memcpy(joined, h + 345, p);
                    joined[p] = '/';
                    memcpy(joined + p + 1, h, n);
                    name.p = joined;
                    name.n = p + 1 + n;
                }
            }
            int status = add_member(&s, name, start, size);
            if (status != TAR_OK)
                return status;
            offset = end;
        } else if (kind >= '1' && kind <= '6') {
            offset = start; /* tarfile skips no data for links, devices, folders, FIFOs */
        } else if (kind == 'L' || kind == 'K') {
            if (kind == 'L') {
                long_name.p = src + start;
                long_name.n = nts_length(src + start, (size_t)size);
                long_name.set = 1;
            }
            offset = end;
            continue;
        } else if (kind == 'x' || kind == 'g') {
            span path;
            if (pax_path(src + start, (size_t)size, &path) != 0)
                return TAR_UNSURE;
            if (kind == 'g') {
                if (path.set)
                    global_path = path;
            } else {
                /* tarfile applies global records only through a following local header. */
                local_path = path.set ? path : global_path;
            }
            offset = end;
            continue;
        } else {
            return TAR_UNSURE; /* old GNU sparse, Solaris pax, vendor types */
        }
        long_name.set = 0;
        local_path.set = 0;
    }
    if (s.in_sample) {
        int status = finish_sample(&s);
        if (status != TAR_OK)
            return status;
    }
    *count = s.count;
    return TAR_OK;
}
