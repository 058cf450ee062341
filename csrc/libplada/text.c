/* text.c: UTF-8 (FORMAT.md 5.6) and the metadata JSON rules (5.7).
 *
 * The JSON checker validates without building values: the caller gets the body's own text. It
 * keeps one byte per open container (at most 64) and, for duplicate-key detection, each open
 * object's unescaped keys on one stack; an object's keys are sorted and compared when it
 * closes, so the work is O(n log n) in the body and nothing is recursive. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64                    /* METADATA_MAX_DEPTH */
#define MAX_SAFE_INTEGER 9007199254740991ULL
#define MAX_INTEGER_DIGITS 16           /* 2^53 - 1 has 16 digits */

int pl_utf8_valid(const uint8_t *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;             /* no overlong forms */
            else if (c == 0xED)
                hi = 0x9F;             /* no surrogates U+D800..U+DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;             /* nothing above U+10FFFF */
        } else {
            *bad = i;
            return 0;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) {
            *bad = i;
            return 0;
        }
        for (size_t j = 2; j < len; j++)
            if ((s[i + j] & 0xC0) != 0x80) {
                *bad = i;
                return 0;
            }
        i += len;
    }
    return 1;
}

typedef struct key_ref {
    size_t start, length; /* in the key arena */
} key_ref;

typedef struct checker {
    const uint8_t *s;
    size_t n, pos;
    char *message;
    size_t message_size;
    /* keys of the open objects, innermost last */
    uint8_t *arena;
    size_t arena_len, arena_cap;
    key_ref *keys;
    size_t keys_len, keys_cap;
    char *scratch; /* a number token rewritten for strtod */
    size_t scratch_cap;
    int oom;
} checker;

PLADA_PRINTF(2, 3) static int fail(checker *c, const char *fmt, ...)
{
    if (c->message && c->message_size) {
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(c->message, c->message_size, "%s at byte %zu of the metadata body", what, c->pos);
    }
    return 1;
}

static int grow(void **buf, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap)
        return 1;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need)
        cap2 *= 2;
    void *p = realloc(*buf, cap2 * item);
    if (!p)
        return 0;
    *buf = p;
    *cap = cap2;
    return 1;
}

static void skip_ws(checker *c)
{
    while (c->pos < c->n) {
        uint8_t ch = c->s[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        c->pos++;
    }
}

static int hex4(const uint8_t *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (uint32_t)(ch - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static int put_utf8(checker *c, uint32_t cp)
{
    uint8_t b[4];
    size_t len;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        len = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        len = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        len = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        len = 4;
    }
    if (!grow((void **)&c->arena, &c->arena_cap, c->arena_len + len, 1)) {
        c->oom = 1;
        return 0;
    }
    memcpy(c->arena + c->arena_len, b, len);
    c->arena_len += len;
    return 1;
}

/* A string at c->pos (the opening quote). With as_key, its unescaped UTF-8 is appended to the
 * arena and recorded as a key of the innermost object. Returns 0 when valid. */
static int string(checker *c, int as_key)
{
    size_t start = c->arena_len;
    c->pos++; /* the quote */
    for (;;) {
        if (c->pos >= c->n)
            return fail(c, "unterminated string");
        uint8_t ch = c->s[c->pos];
        if (ch == '"') {
            c->pos++;
            break;
        }
        if (ch < 0x20)
            return fail(c, "control character U+%04X in a string", ch);
        if (ch != '\\') {
            if (as_key && !grow((void **)&c->arena, &c->arena_cap, c->arena_len + 1, 1)) {
                c->oom = 1;
                return 1;
            }
            if (as_key)
                c->arena[c->arena_len++] = ch;
            c->pos++;
            continue;
        }
        if (c->pos + 1 >= c->n)
            return fail(c, "unterminated escape");
        uint8_t e = c->s[c->pos + 1];
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (c->n - c->pos < 6 || !hex4(c->s + c->pos + 2, &cp))
                return fail(c, "invalid \\uXXXX escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t low;
                if (c->n - c->pos >= 12 && c->s[c->pos + 6] == '\\' && c->s[c->pos + 7] == 'u' &&
                    hex4(c->s + c->pos + 8, &low) && low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    c->pos += 6;
                } else {
                    return fail(c, "lone surrogate escape \\u%04X", cp);
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(c, "lone surrogate escape \\u%04X", cp);
            }
            c->pos += 4;
            break;
        default:
            return fail(c, "invalid escape \\%c", e >= 0x20 && e < 0x7F ? e : '?');
        }
        c->pos += 2;
        if (as_key && !put_utf8(c, cp))
            return 1;
    }
    if (as_key) {
        if (!grow((void **)&c->keys, &c->keys_cap, c->keys_len + 1, sizeof *c->keys)) {
            c->oom = 1;
            return 1;
        }
        c->keys[c->keys_len].start = start;
        c->keys[c->keys_len].length = c->arena_len - start;
        c->keys_len++;
    }
    return 0;
}

static int is_digit(uint8_t ch)
{
    return ch >= '0' && ch <= '9';
}

/* A number at c->pos: RFC 8259's grammar; an integer (no fraction, no exponent) within
 * +-(2^53 - 1) (rule 5), any other number finite as a binary64 (rule 6). */
static int number(checker *c)
{
    size_t start = c->pos, p = c->pos;
    if (p < c->n && c->s[p] == '-')
        p++;
    size_t int_start = p;
    if (p >= c->n || !is_digit(c->s[p]))
        return fail(c, "invalid number");
    if (c->s[p] == '0')
        p++;
    else
        while (p < c->n && is_digit(c->s[p]))
            p++;
    size_t int_end = p, frac_start = p, frac_end = p;
    int is_integer = 1;
    if (p < c->n && c->s[p] == '.') {
        p++;
        frac_start = p;
        if (p >= c->n || !is_digit(c->s[p]))
            return fail(c, "invalid number");
        while (p < c->n && is_digit(c->s[p]))
            p++;
        frac_end = p;
        is_integer = 0;
    }
    long long exponent = 0;
    if (p < c->n && (c->s[p] == 'e' || c->s[p] == 'E')) {
        p++;
        int negative = 0;
        if (p < c->n && (c->s[p] == '+' || c->s[p] == '-'))
            negative = c->s[p++] == '-';
        if (p >= c->n || !is_digit(c->s[p]))
            return fail(c, "invalid number");
        while (p < c->n && is_digit(c->s[p])) {
            if (exponent < 1000000000LL) /* saturate: beyond this every value is 0 or inf */
                exponent = exponent * 10 + (c->s[p] - '0');
            p++;
        }
        if (negative)
            exponent = -exponent;
        is_integer = 0;
    }
    c->pos = p;
    if (is_integer) {
        size_t digits = int_end - int_start;
        if (digits > MAX_INTEGER_DIGITS)
            return fail(c, "integer of %zu digits is outside +-(2**53 - 1)", digits);
        uint64_t v = 0;
        for (size_t i = int_start; i < int_end; i++)
            v = v * 10 + (uint64_t)(c->s[i] - '0');
        if (v > MAX_SAFE_INTEGER)
            return fail(c, "integer is outside +-(2**53 - 1)");
        return 0;
    }
    /* strtod is locale-dependent only in its decimal point: rewrite the token without one
     * ("12.5e3" as "125e2"), so the C library's correctly rounded conversion decides. */
    size_t frac_digits = frac_end - frac_start;
    size_t need = (int_end - start) + frac_digits + 32;
    if (!grow((void **)&c->scratch, &c->scratch_cap, need, 1)) {
        c->oom = 1;
        return 1;
    }
    size_t o = 0;
    memcpy(c->scratch, c->s + start, int_end - start);
    o += int_end - start;
    memcpy(c->scratch + o, c->s + frac_start, frac_digits);
    o += frac_digits;
    long long e = exponent - (long long)frac_digits;
    o += (size_t)snprintf(c->scratch + o, need - o, "e%lld", e);
    c->scratch[o] = 0;
    errno = 0;
    double value = strtod(c->scratch, NULL);
    if (isinf(value))
        return fail(c, "number is outside the range of a double");
    return 0;
}

static int literal(checker *c, const char *word)
{
    size_t len = strlen(word);
    if (c->n - c->pos < len || memcmp(c->s + c->pos, word, len) != 0)
        return fail(c, "invalid JSON value");
    c->pos += len;
    return 0;
}

static int key_compare(const void *a, const void *b, const uint8_t *arena)
{
    const key_ref *x = a, *y = b;
    size_t m = x->length < y->length ? x->length : y->length;
    int r = memcmp(arena + x->start, arena + y->start, m);
    if (r)
        return r;
    return (x->length > y->length) - (x->length < y->length);
}

/* A merge sort instead of qsort: qsort's comparator has no context argument, and a global
 * would break the library's thread safety. Sorts keys[0..n) using tmp[0..n). */
static void sort_keys(key_ref *keys, key_ref *tmp, size_t n, const uint8_t *arena)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                tmp[o++] = key_compare(&keys[j], &keys[i], arena) < 0 ? keys[j++] : keys[i++];
            while (i < mid)
                tmp[o++] = keys[i++];
            while (j < hi)
                tmp[o++] = keys[j++];
        }
        memcpy(keys, tmp, n * sizeof *keys);
    }
}

/* Rule 4 for the object whose keys are keys[first .. keys_len); pops them. */
static int close_object(checker *c, size_t first)
{
    size_t n = c->keys_len - first;
    int result = 0;
    if (n > 1) {
        key_ref *tmp = malloc(n * sizeof *tmp);
        if (!tmp) {
            c->oom = 1;
            return 1;
        }
        key_ref *keys = c->keys + first;
        sort_keys(keys, tmp, n, c->arena);
        free(tmp);
        for (size_t i = 1; i < n; i++)
            if (key_compare(&keys[i - 1], &keys[i], c->arena) == 0) {
                result = fail(c, "duplicate key in a JSON object");
                break;
            }
    }
    if (n)
        c->arena_len = c->keys[first].start;
    c->keys_len = first;
    return result;
}

int pl_json_check(const uint8_t *text, size_t size, char *message, size_t message_size)
{
    checker c;
    memset(&c, 0, sizeof c);
    c.s = text;
    c.n = size;
    c.message = message;
    c.message_size = message_size;
    /* One entry per open container: '{' or '[', and for objects where their keys start. */
    uint8_t kind[MAX_DEPTH];
    size_t key_base[MAX_DEPTH];
    int depth = 0;
    int result = 0;
    /* States: expecting a value, or after a value inside a container. */
    skip_ws(&c);
    if (c.pos >= c.n || c.s[c.pos] != '{') {
        result = fail(&c, "top-level JSON value must be an object");
        goto done;
    }
    for (;;) {
        /* ---- a value is expected at c.pos (after whitespace) ---- */
        skip_ws(&c);
        if (c.pos >= c.n) {
            result = fail(&c, "unexpected end of JSON");
            goto done;
        }
        uint8_t ch = c.s[c.pos];
        if (ch == '{' || ch == '[') {
            if (depth == MAX_DEPTH) {
                result = fail(&c, "JSON nested deeper than %d", MAX_DEPTH);
                goto done;
            }
            kind[depth] = ch;
            key_base[depth] = c.keys_len;
            depth++;
            c.pos++;
            skip_ws(&c);
            if (c.pos < c.n && c.s[c.pos] == (ch == '{' ? '}' : ']')) {
                c.pos++;
                depth--;
                goto after_value;
            }
            if (ch == '{')
                goto object_key;
            continue; /* the array's first value */
        }
        if (ch == '"')
            result = string(&c, 0);
        else if (ch == '-' || is_digit(ch))
            result = number(&c);
        else if (ch == 't')
            result = literal(&c, "true");
        else if (ch == 'f')
            result = literal(&c, "false");
        else if (ch == 'n')
            result = literal(&c, "null");
        else
            result = fail(&c, "invalid JSON value");
        if (result)
            goto done;
    after_value:
        /* ---- after a value: close containers, or go on to the next member ---- */
        for (;;) {
            if (depth == 0) {
                skip_ws(&c);
                if (c.pos != c.n)
                    result = fail(&c, "extra data after the JSON object");
                goto done;
            }
            skip_ws(&c);
            if (c.pos >= c.n) {
                result = fail(&c, "unexpected end of JSON");
                goto done;
            }
            uint8_t close = kind[depth - 1] == '{' ? '}' : ']';
            ch = c.s[c.pos];
            if (ch == close) {
                c.pos++;
                depth--;
                if (close == '}' && (result = close_object(&c, key_base[depth])) != 0)
                    goto done;
                continue;
            }
            if (ch != ',') {
                result = fail(&c, "expected ',' or '%c'", close);
                goto done;
            }
            c.pos++;
            if (kind[depth - 1] == '[')
                break; /* the next array value */
            skip_ws(&c);
            goto object_key;
        }
        continue;
    object_key:
        /* ---- a key, a colon, then the member's value ---- */
        if (c.pos >= c.n || c.s[c.pos] != '"') {
            result = fail(&c, "expected a string key");
            goto done;
        }
        if ((result = string(&c, 1)) != 0)
            goto done;
        skip_ws(&c);
        if (c.pos >= c.n || c.s[c.pos] != ':') {
            result = fail(&c, "expected ':' after a key");
            goto done;
        }
        c.pos++;
    }
done:
    free(c.arena);
    free(c.keys);
    free(c.scratch);
    if (c.oom)
        return -1;
    return result;
}
