/* plada_cm.c: format 1.1 joint context-model codec (index section codec 2).
 *
 * A C twin of plada_codec/_cm_py.py, which is the executable reference;
 * spec/FORMAT.md section 15 is normative. Same bytes, same status codes and
 * error fields as the Python twin for every input. All model state lives in
 * one struct on the stack; nothing is allocated. */
#include "plada_core.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CM_INLINE static inline __attribute__((always_inline))
#define CM_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define CM_INLINE static inline
#define CM_LIKELY(x) (x)
#endif

#define PROB_BITS 16
#define PROB_ONE (1u << PROB_BITS)
#define RANGE_TOP (1u << 24)
#define RAW_CHUNK 16
#define MAX_GAP_BITS 49
#define AVG_FRAC 4
#define GAP_CONTEXTS 64
#define LENGTH_MODELS (2 * MAX_GAP_BITS)
#define GAP_CLASSES 6
#define RUN_CLASSES 5
#define RECENT 4
#define TREE_BITS 6
#define MAX_SLOTS 4
#define MAX_MANTISSA 3
#define N_FLAGS (MAX_SLOTS * GAP_CLASSES * RUN_CLASSES * (RECENT + 1))
#define NO_LABEL UINT32_MAX
#define MAX_AVERAGE (MAX_GAP_BITS << AVG_FRAC)

/* A model in one word: bits 0-15 are prob, the probability of a 0 bit in
 * 2**-16 units (1..65535); bits 16-31 are count, the updates so far,
 * saturating at the preset's rate limit. One load and one store a decision. */
typedef uint32_t model;
#define MODEL_PROB(m) ((m) & 0xFFFFu)
#define MODEL_FRESH (PROB_ONE / 2) /* prob 32768, count 0 */

typedef struct cm_state {
    model lengths[GAP_CONTEXTS * LENGTH_MODELS];
    model mantissa[(MAX_GAP_BITS + 1) << MAX_MANTISSA];
    model flags[N_FLAGS];
    model tree[1 << TREE_BITS];
    /* step[count]: RATE[count] in bits 0-15, the count after the update in bits
     * 16-31 (count + 1, or count at the rate limit). */
    uint32_t step[256];
    unsigned rate_limit, slots, slots_used, mantissa_bits, average_shift;
    unsigned max_length, label_bits, tree_bits;
    uint32_t n_classes;
    uint32_t list[MAX_SLOTS];   /* move-to-front list */
    uint32_t recent[RECENT];    /* ring of the last labels, NO_LABEL when unset */
    unsigned recent_pos;
    uint64_t run;
    uint32_t average;
} cm_state;

static unsigned bit_length64(uint64_t v)
{
    return v ? 64u - (unsigned)__builtin_clzll(v) : 0u;
}

static int cm_init(cm_state *s, const plada_cm_params *params, uint64_t n_ref, size_t count,
                   uint32_t n_classes)
{
    if (params->slots > MAX_SLOTS || params->mantissa_bits > MAX_MANTISSA ||
        params->average_shift < 1 || params->average_shift > 7 || params->rate_limit > 255 ||
        n_ref == 0 || n_ref > (UINT64_C(1) << 48) || n_classes == 0 ||
        n_classes > (UINT32_C(1) << 24) || count > n_ref)
        return 0;
    for (size_t i = 0; i < sizeof s->lengths / sizeof *s->lengths; i++)
        s->lengths[i] = MODEL_FRESH;
    for (size_t i = 0; i < sizeof s->mantissa / sizeof *s->mantissa; i++)
        s->mantissa[i] = MODEL_FRESH;
    for (size_t i = 0; i < N_FLAGS; i++)
        s->flags[i] = MODEL_FRESH;
    for (size_t i = 0; i < (1u << TREE_BITS); i++)
        s->tree[i] = MODEL_FRESH;
    for (unsigned n = 0; n < 256; n++) {
        uint32_t rate = (2u << PROB_BITS) / (2 * n + 3); /* RATE[0] = 43690 fits 16 bits */
        uint32_t next = n < params->rate_limit ? n + 1 : n;
        s->step[n] = rate | next << 16;
    }
    s->rate_limit = params->rate_limit;
    s->slots = params->slots;
    s->mantissa_bits = params->mantissa_bits;
    s->average_shift = params->average_shift;
    s->max_length = bit_length64(n_ref);
    s->n_classes = n_classes;
    s->label_bits = bit_length64(n_classes - 1);
    s->tree_bits = s->label_bits < TREE_BITS ? s->label_bits : TREE_BITS;
    s->slots_used = s->slots < n_classes ? s->slots : n_classes;
    for (unsigned i = 0; i < MAX_SLOTS; i++)
        s->list[i] = i;
    for (unsigned i = 0; i < RECENT; i++)
        s->recent[i] = NO_LABEL;
    s->recent_pos = 0;
    s->run = 0;
    s->average = bit_length64(n_ref / (count ? count : 1)) << AVG_FRAC;
    return 1;
}

CM_INLINE void model_update(const cm_state *s, model *m, unsigned bit)
{
    uint32_t prob = MODEL_PROB(*m);
    uint32_t step = s->step[*m >> 16];
    uint32_t rate = step & 0xFFFFu;
    if (bit)
        prob -= (prob * rate) >> 16;
    else
        prob += ((PROB_ONE - prob) * rate) >> 16;
    *m = prob | (step & 0xFFFF0000u);
}

CM_INLINE unsigned gap_context(const cm_state *s)
{
    unsigned c = s->average >> (AVG_FRAC - 1);
    return c < GAP_CONTEXTS ? c : GAP_CONTEXTS - 1;
}

CM_INLINE unsigned predicted_length(const cm_state *s)
{
    unsigned p = (s->average + (1u << (AVG_FRAC - 1))) >> AVG_FRAC;
    if (p > s->max_length)
        p = s->max_length;
    return p ? p : 1;
}

CM_INLINE void after_gap(cm_state *s, unsigned length)
{
    unsigned shift = s->average_shift;
    s->average = (s->average * ((1u << shift) - 1) + (length << AVG_FRAC)) >> shift;
}

CM_INLINE unsigned gap_class(unsigned length)
{
    static const unsigned char table[9] = {0, 0, 1, 2, 3, 3, 4, 4, 4};
    return length <= 8 ? table[length] : 5;
}

CM_INLINE unsigned flag_base(const cm_state *s, unsigned length)
{
    unsigned run = bit_length64(s->run);
    if (run > RUN_CLASSES - 1)
        run = RUN_CLASSES - 1;
    return (gap_class(length) * RUN_CLASSES + run) * (RECENT + 1);
}

CM_INLINE unsigned flag_context2(const cm_state *s, unsigned slot, unsigned base)
{
    uint32_t label = s->list[slot];
    unsigned recent = (s->recent[0] == label) + (s->recent[1] == label) + (s->recent[2] == label) +
                      (s->recent[3] == label);
    return slot * (GAP_CLASSES * RUN_CLASSES * (RECENT + 1)) + base + recent;
}

CM_INLINE unsigned flag_context(const cm_state *s, unsigned slot, unsigned length)
{
    return flag_context2(s, slot, flag_base(s, length));
}

CM_INLINE void after_label(cm_state *s, uint32_t label, unsigned slot)
{
    if (s->slots_used) {
        uint32_t last = s->recent[(s->recent_pos + RECENT - 1) % RECENT];
        s->run = last == label ? s->run + 1 : 1;
        for (unsigned i = slot; i > 0; i--)
            s->list[i] = s->list[i - 1];
        s->list[0] = label;
    }
    s->recent[s->recent_pos] = label;
    s->recent_pos = (s->recent_pos + 1) % RECENT;
}

/* ---- encoder ------------------------------------------------------------ */

typedef struct rc_encoder {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t cache_size;
    uint8_t *out;
    size_t cap, pos;   /* pos counts the virtual first byte too */
    int overflow;
} rc_encoder;

CM_INLINE void enc_put(rc_encoder *e, uint8_t byte)
{
    /* Byte 0 is the carry out of the initial interval: always 0, never sent. */
    if (e->pos > 0) {
        if (e->pos - 1 < e->cap)
            e->out[e->pos - 1] = byte;
        else
            e->overflow = 1;
    }
    e->pos++;
}

static void enc_shift_low(rc_encoder *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t temp = e->cache;
        do {
            enc_put(e, (uint8_t)(temp + carry));
            temp = 0xFF;
        } while (--e->cache_size != 0);
        e->cache = (uint8_t)((uint32_t)e->low >> 24);
    }
    e->cache_size++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

CM_INLINE void enc_normalize(rc_encoder *e)
{
    while (e->range < RANGE_TOP) {
        e->range <<= 8;
        enc_shift_low(e);
    }
}

CM_INLINE void enc_bit(rc_encoder *e, const cm_state *s, model *m, unsigned bit)
{
    uint32_t bound = (e->range >> PROB_BITS) * MODEL_PROB(*m);
    if (bit) {
        e->low += bound;
        e->range -= bound;
    } else {
        e->range = bound;
    }
    model_update(s, m, bit);
    enc_normalize(e);
}

CM_INLINE void enc_uniform(rc_encoder *e, uint32_t value, uint32_t n)
{
    uint32_t share = e->range / n;
    e->low += (uint64_t)value * share;
    e->range = share;
    enc_normalize(e);
}

CM_INLINE void enc_raw(rc_encoder *e, uint64_t value, unsigned nbits)
{
    while (nbits > 0) {
        unsigned chunk = nbits < RAW_CHUNK ? nbits : RAW_CHUNK;
        nbits -= chunk;
        enc_uniform(e, (uint32_t)((value >> nbits) & ((1u << chunk) - 1)), 1u << chunk);
    }
}

static void enc_finish(rc_encoder *e)
{
    uint64_t value = e->low;
    for (unsigned j = 0; j < 5; j++) {
        unsigned shift = 8 * (4 - j);
        uint64_t unit = UINT64_C(1) << shift;
        value = ((e->low + unit - 1) >> shift) << shift;
        if (value < e->low + e->range)
            break;
    }
    e->low = value;
    for (unsigned i = 0; i < 5; i++)
        enc_shift_low(e);
}

size_t plada_cm_bound(size_t count)
{
    return 4 + 136 * count;
}

int plada_cm_encode(const int64_t *indices, const int32_t *labels, size_t count, uint64_t n_ref,
                    uint32_t n_classes, const plada_cm_params *params, uint8_t *out,
                    size_t out_cap, size_t *out_len, plada_error *err)
{
    cm_state s;
    if (!cm_init(&s, params, n_ref, count, n_classes))
        return plada_fail(err, PLADA_ERR_ARG, 0, 0, 0);
    rc_encoder e = {0, 0xFFFFFFFFu, 0, 1, out, out_cap, 0, 0};
    int64_t prev = -1;
    for (size_t i = 0; i < count; i++) {
        int64_t index = indices[i];
        uint32_t label = (uint32_t)labels[i];
        if (index <= prev || (uint64_t)index >= n_ref || labels[i] < 0 || label >= n_classes)
            return plada_fail(err, PLADA_ERR_ARG, i, 0, 0);
        uint64_t v = (uint64_t)(index - prev);
        prev = index;
        unsigned length = bit_length64(v);
        model *lm = s.lengths + gap_context(&s) * LENGTH_MODELS;
        unsigned p = predicted_length(&s);
        unsigned below = length < p;
        if (p > 1)
            enc_bit(&e, &s, lm, below);
        if (below) {
            for (unsigned t = p - 1; t > 1; t--) {
                enc_bit(&e, &s, lm + t, length < t);
                if (length == t)
                    break;
            }
        } else {
            for (unsigned t = p; t < s.max_length; t++) {
                enc_bit(&e, &s, lm + MAX_GAP_BITS + t, length > t);
                if (length == t)
                    break;
            }
        }
        unsigned modelled = s.mantissa_bits < length - 1 ? s.mantissa_bits : length - 1;
        unsigned rest = length - 1 - modelled;
        model *mant = s.mantissa + ((size_t)length << s.mantissa_bits);
        unsigned node = 1;
        for (unsigned b = modelled; b-- > 0;) {
            unsigned bit = (unsigned)(v >> (rest + b)) & 1u;
            enc_bit(&e, &s, mant + node, bit);
            node = 2 * node + bit;
        }
        enc_raw(&e, v, rest);
        after_gap(&s, length);

        unsigned slot = 0;
        int coded_in_full = 1;
        for (; slot < s.slots_used; slot++) {
            if (slot == s.slots_used - 1 && s.slots_used == s.n_classes) {
                coded_in_full = 0;
                break;
            }
            unsigned hit = s.list[slot] == label;
            enc_bit(&e, &s, s.flags + flag_context(&s, slot, length), hit);
            if (hit) {
                coded_in_full = 0;
                break;
            }
        }
        if (coded_in_full) {
            unsigned low_bits = s.label_bits - s.tree_bits;
            uint32_t high = label >> low_bits;
            node = 1;
            for (unsigned b = s.tree_bits; b-- > 0;) {
                unsigned bit = (high >> b) & 1u;
                enc_bit(&e, &s, s.tree + node, bit);
                node = 2 * node + bit;
            }
            enc_raw(&e, label, low_bits);
            slot = s.slots_used ? s.slots_used - 1 : 0;
        }
        after_label(&s, label, slot);
        if (e.overflow)
            return plada_fail(err, PLADA_ERR_LENGTH, 0, plada_cm_bound(count), out_cap);
    }
    enc_finish(&e);
    if (e.overflow)
        return plada_fail(err, PLADA_ERR_LENGTH, 0, plada_cm_bound(count), out_cap);
    size_t n = e.pos - 1;
    while (n > 0 && out[n - 1] == 0)
        n--;
    *out_len = n;
    return PLADA_OK;
}

/* ---- decoder ------------------------------------------------------------ */

/* The decoder's hot loop works on locals (the coder state, the output
 * pointers) and is compiled once per preset with its parameters as constants
 * (cm_decode_pairs below); every decision that feeds only arithmetic (the
 * mantissa and label trees) is decoded without a branch on its value. */

typedef struct rc_decoder {
    const uint8_t *src;
    size_t len;
    uint64_t pos;   /* bytes shifted into the window so far (may pass len) */
    uint32_t code, range;
} rc_decoder;

CM_INLINE uint32_t dec_byte(rc_decoder *d)
{
    uint64_t pos = d->pos++;
    return CM_LIKELY(pos < d->len) ? d->src[pos] : 0u;
}

CM_INLINE void dec_normalize(rc_decoder *d)
{
    while (d->range < RANGE_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | dec_byte(d);
    }
}

/* Renormalise after a decision (at most twice: bound >= range >> 16 >= 2**8). */
CM_INLINE void dec_renorm_bit(rc_decoder *d)
{
    if (d->range < RANGE_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | dec_byte(d);
        if (d->range < RANGE_TOP) {
            d->range <<= 8;
            d->code = (d->code << 8) | dec_byte(d);
        }
    }
}

/* One decision, for a caller that branches on it; the model update of spec
 * 15.3 is done in each arm (its step entry gives the rate and the next count). */
CM_INLINE unsigned dec_bit(rc_decoder *d, const uint32_t *step_table, model *m)
{
    uint32_t state = *m;
    uint32_t prob = MODEL_PROB(state);
    uint32_t step = step_table[state >> 16];
    uint32_t rate = step & 0xFFFFu, next = step & 0xFFFF0000u;
    uint32_t bound = (d->range >> PROB_BITS) * prob;
    unsigned bit;
    if (d->code < bound) {
        d->range = bound;
        *m = (prob + (((PROB_ONE - prob) * rate) >> 16)) | next;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        *m = (prob - ((prob * rate) >> 16)) | next;
        bit = 1;
    }
    dec_renorm_bit(d);
    return bit;
}

/* The interval step of a decision without a branch: bit = code >= bound, then
 * (code, range) = bit ? (code - bound, range - bound) : (code, bound). On
 * x86-64 two conditional moves, which compilers do not reliably choose for the
 * plain C form (a branch there mispredicts as often as the bit is uncertain). */
CM_INLINE void dec_select(uint32_t *code_p, uint32_t *range_p, uint32_t bound, uint32_t *bit_p)
{
    uint32_t code = *code_p, range = *range_p;
#if defined(__GNUC__) && defined(__x86_64__)
    uint32_t new_range = bound, range_less = range - bound, code_less = code - bound;
    unsigned char bit;
    __asm__("cmpl %[bound], %[code]\n\t"
            "cmovael %[range_less], %[new_range]\n\t"
            "cmovael %[code_less], %[code]\n\t"
            "setae %[bit]"
            : [new_range] "+r"(new_range), [code] "+r"(code), [bit] "=q"(bit)
            : [bound] "r"(bound), [range_less] "r"(range_less), [code_less] "r"(code_less)
            : "cc");
    *code_p = code;
    *range_p = new_range;
    *bit_p = bit;
#else
    uint32_t bit = code >= bound;
    uint32_t mask = 0u - bit;
    *code_p = code - (bound & mask);
    *range_p = bound + ((range - bound - bound) & mask);
    *bit_p = bit;
#endif
}

/* A binary tree of `levels` decisions over models m[1 .. 2**levels - 1] (node
 * 1 first, then node 2 * node + bit), without a branch on the bits: they feed
 * only arithmetic, and are as unpredictable for the CPU as for the model. The
 * children of a node are loaded while its decision is decoded. Returns the
 * leaf, 2**levels + the decoded value. */
CM_INLINE unsigned dec_tree(rc_decoder *d, const uint32_t *step_table, model *m, unsigned levels)
{
    unsigned node = 1;
    uint32_t state = m[1];
    for (unsigned b = 1; b <= levels; b++) {
        uint32_t prob = MODEL_PROB(state);
        uint32_t step = step_table[state >> 16];
        uint32_t rate = step & 0xFFFFu, next = step & 0xFFFF0000u;
        uint32_t range = d->range;
        uint32_t bound = (range >> PROB_BITS) * prob;
        uint32_t kid0 = 0, kid1 = 0;
        if (b < levels) { /* the last level has no children in the array */
            kid0 = m[2 * node];
            kid1 = m[2 * node + 1];
        }
        uint32_t bit;
        dec_select(&d->code, &d->range, bound, &bit);
        uint32_t mask = 0u - bit;
        uint32_t up = prob + (((PROB_ONE - prob) * rate) >> 16);
        uint32_t down = prob - ((prob * rate) >> 16);
        m[node] = (up ^ ((up ^ down) & mask)) | next;
        dec_renorm_bit(d);
        node = 2 * node + bit;
        state = kid0 ^ ((kid0 ^ kid1) & mask);
    }
    return node;
}

/* Returns n (never a valid value) when the coded value falls outside [0, n). */
CM_INLINE uint32_t dec_uniform(rc_decoder *d, uint32_t n)
{
    uint32_t share = d->range / n;
    uint32_t value = d->code / share;
    if (value >= n)
        return n;
    d->code -= value * share;
    d->range = share;
    dec_normalize(d);
    return value;
}

/* 0 on success; on a value outside its range fills *bad_n / *bad_value. */
CM_INLINE int dec_raw(rc_decoder *d, unsigned nbits, uint64_t *value, uint32_t *bad_n,
                      uint32_t *bad_value)
{
    uint64_t v = 0;
    while (nbits > 0) {
        unsigned chunk = nbits < RAW_CHUNK ? nbits : RAW_CHUNK;
        nbits -= chunk;
        uint32_t n = 1u << chunk;
        uint32_t part = dec_uniform(d, n);
        if (part >= n) {
            *bad_n = n;
            *bad_value = d->code / (d->range / n);
            return 1;
        }
        v = (v << chunk) | part;
    }
    *value = v;
    return 0;
}

/* The k pairs of spec 15.5 and 15.6, then the termination checks of 15.7.
 * Inlined into one copy per preset: slots, mantissa_bits and average_shift
 * are then constants, and the loops over them are unrolled (the rate limit is
 * in the step table). */
CM_INLINE int cm_decode_pairs(cm_state *s, rc_decoder *dp, size_t count, uint64_t n_ref,
                              const unsigned slots, const unsigned mantissa_bits,
                              const unsigned average_shift,
                              int64_t *restrict indices, int32_t *restrict labels, plada_error *err)
{
    rc_decoder d = *dp;
    const uint32_t *step = s->step;
    const uint32_t n_classes = s->n_classes;
    const unsigned max_length = s->max_length;
    const unsigned tree_bits = s->tree_bits;
    const unsigned low_bits = s->label_bits - s->tree_bits;
    const unsigned slots_used = slots < n_classes ? slots : n_classes;
    /* The last slot is not coded when the list holds every label (C <= slots). */
    const unsigned flagged = slots_used == n_classes ? slots_used - 1 : slots_used;
    /* average never exceeds MAX_AVERAGE (15.5: it starts at bit_length(N // k) << 4
     * and moves toward L << 4, both at most 49 << 4): one table gives the
     * length models' offset (98 * gap_context) and the predicted length. */
    uint32_t by_average[MAX_AVERAGE + 1];
    for (uint32_t a = 0; a <= MAX_AVERAGE; a++) {
        unsigned gctx = a >> (AVG_FRAC - 1);
        if (gctx > GAP_CONTEXTS - 1)
            gctx = GAP_CONTEXTS - 1;
        unsigned p = (a + (1u << (AVG_FRAC - 1))) >> AVG_FRAC;
        if (p > max_length)
            p = max_length;
        if (p == 0)
            p = 1;
        by_average[a] = gctx * LENGTH_MODELS | p << 16;
    }
    /* the flags' offset of each length's gap class (15.6) */
    unsigned short flag_base[MAX_GAP_BITS + 1];
    for (unsigned l = 0; l <= MAX_GAP_BITS; l++)
        flag_base[l] = (unsigned short)(gap_class(l) * RUN_CLASSES * (RECENT + 1));
    uint32_t average = s->average;
    uint32_t list[MAX_SLOTS] = {0, 1, 2, 3};
    /* recent (15.6) as a multiset: only how many of its labels equal a given one matters. */
#if defined(__SSE2__)
    __m128i recent = _mm_set1_epi32(-1); /* NO_LABEL in every lane */
#else
    uint32_t recent[RECENT] = {NO_LABEL, NO_LABEL, NO_LABEL, NO_LABEL};
    unsigned recent_pos = 0;
#endif
    uint32_t last = NO_LABEL; /* the newest label in recent */
    unsigned run = 0;       /* run, saturated at 8 (its class is then 4 for good) */
    static const unsigned char run_classes[9] = {0, 1, 2, 2, 3, 3, 3, 3, 4};
    uint64_t prev = UINT64_MAX; /* index -1: prev + v wraps to v - 1 */
    uint32_t bad_n, bad_value;
    for (size_t i = 0; i < count; i++) {
        uint32_t at = by_average[average];
        model *lm = s->lengths + (at & 0xFFFFu);
        unsigned p = at >> 16;
        unsigned length;
        if (p > 1 && dec_bit(&d, step, lm)) {
            length = p - 1;
            while (length > 1 && dec_bit(&d, step, lm + length))
                length--;
        } else {
            length = p;
            while (length < max_length && dec_bit(&d, step, lm + MAX_GAP_BITS + length))
                length++;
        }
        uint64_t v;
        if (length > mantissa_bits) {
            /* The common case: every modelled bit is there. */
            unsigned rest = length - 1 - mantissa_bits;
            model *mant = s->mantissa + ((size_t)length << mantissa_bits);
            unsigned node = dec_tree(&d, step, mant, mantissa_bits);
            uint64_t low = 0;
            if (rest) {
                if (CM_LIKELY(rest <= RAW_CHUNK)) {
                    uint32_t n = 1u << rest;
                    uint32_t part = dec_uniform(&d, n);
                    if (part >= n)
                        return plada_fail(err, PLADA_ERR_CODED, i, n, d.code / (d.range / n));
                    low = part;
                } else if (dec_raw(&d, rest, &low, &bad_n, &bad_value)) {
                    return plada_fail(err, PLADA_ERR_CODED, i, bad_n, bad_value);
                }
            }
            v = ((uint64_t)node << rest) | low;
        } else {
            /* length <= mantissa_bits: length - 1 modelled bits, no raw ones. */
            model *mant = s->mantissa + ((size_t)length << mantissa_bits);
            v = dec_tree(&d, step, mant, length - 1);
        }
        /* prev < n_ref <= 2**48 (or -1) and v < 2**49: no wrap past the check. */
        uint64_t index = prev + v;
        if (index >= n_ref)
            return plada_fail(err, PLADA_ERR_RANGE, i, n_ref, index);
        indices[i] = (int64_t)index;
        prev = index;
        average = (average * ((1u << average_shift) - 1) + (length << AVG_FRAC)) >> average_shift;

        uint32_t label;
        unsigned slot = 0;
        int coded_in_full = 1;
        if (slots) {
            model *fm = s->flags + flag_base[length] + run_classes[run] * (RECENT + 1);
            for (; slot < flagged; slot++, fm += GAP_CLASSES * RUN_CLASSES * (RECENT + 1)) {
                uint32_t candidate = list[slot];
#if defined(__SSE2__)
                static const unsigned char popcount4[16] = {0, 1, 1, 2, 1, 2, 2, 3,
                                                            1, 2, 2, 3, 2, 3, 3, 4};
                __m128i same = _mm_cmpeq_epi32(recent, _mm_set1_epi32((int)candidate));
                unsigned seen = popcount4[_mm_movemask_ps(_mm_castsi128_ps(same))];
#else
                unsigned seen = (recent[0] == candidate) + (recent[1] == candidate) +
                                (recent[2] == candidate) + (recent[3] == candidate);
#endif
                if (dec_bit(&d, step, fm + seen)) {
                    coded_in_full = 0;
                    break;
                }
            }
            if (slot == flagged && flagged < slots_used)
                coded_in_full = 0; /* the only label left: not coded */
        }
        if (coded_in_full) {
            unsigned tnode = dec_tree(&d, step, s->tree, tree_bits);
            uint64_t lo = 0;
            if (low_bits && dec_raw(&d, low_bits, &lo, &bad_n, &bad_value))
                return plada_fail(err, PLADA_ERR_CODED, i, bad_n, bad_value);
            uint64_t full = ((uint64_t)(tnode - (1u << tree_bits)) << low_bits) | lo;
            if (full >= n_classes)
                return plada_fail(err, PLADA_ERR_LABEL, i, n_classes, full);
            label = (uint32_t)full;
            for (unsigned j = 0; j < slots_used; j++)
                if (list[j] == label)
                    return plada_fail(err, PLADA_ERR_CANONICAL, i, 1, label);
            slot = slots_used ? slots_used - 1 : 0;
        } else {
            label = list[slot];
        }
        labels[i] = (int32_t)label;
        if (slots_used) {
            run = last == label ? run + (run < 8) : 1;
            /* Move to front, without a branch on the slot: entries 0 .. slot - 1
             * shift down one place (slot == slots_used - 1 on a miss). */
            for (unsigned j = slots_used - 1; j > 0; j--)
                list[j] = j <= slot ? list[j - 1] : list[j];
            list[0] = label;
        }
        last = label;
#if defined(__SSE2__)
        recent = _mm_or_si128(_mm_slli_si128(recent, 4), _mm_cvtsi32_si128((int)label));
#else
        recent[recent_pos] = label;
        recent_pos = (recent_pos + 1) & (RECENT - 1);
#endif
    }
    *dp = d;
    return PLADA_OK;
}

int plada_cm_decode(const uint8_t *src, size_t src_len, size_t count, uint64_t n_ref,
                    uint32_t n_classes, const plada_cm_params *params, int64_t *indices,
                    int32_t *labels, plada_error *err)
{
    cm_state s;
    if (!cm_init(&s, params, n_ref, count, n_classes))
        return plada_fail(err, PLADA_ERR_ARG, 0, 0, 0);
    rc_decoder d = {src, src_len, 0, 0, 0xFFFFFFFFu};
    for (unsigned i = 0; i < 4; i++)
        d.code = (d.code << 8) | dec_byte(&d);
    if (d.code >= d.range)
        return plada_fail(err, PLADA_ERR_START, 0, 0, d.code);
    int status;
    /* The two presets of spec 15.2 get their own compiled loop; anything else the generic one. */
    if (params->slots == 4 && params->mantissa_bits == 2 && params->average_shift == 2 &&
        params->rate_limit == 60)
        status = cm_decode_pairs(&s, &d, count, n_ref, 4, 2, 2, indices, labels, err);
    else if (params->slots == 0 && params->mantissa_bits == 3 && params->average_shift == 4 &&
             params->rate_limit == 255)
        status = cm_decode_pairs(&s, &d, count, n_ref, 0, 3, 4, indices, labels, err);
    else
        status = cm_decode_pairs(&s, &d, count, n_ref, params->slots, params->mantissa_bits,
                                 params->average_shift, indices, labels, err);
    if (status)
        return status;
    /* Termination (spec 15.7): every byte read, the last one non-zero, and the
     * value the bytes spell is the canonical one of the final interval. */
    if (src_len > d.pos)
        return plada_fail(err, PLADA_ERR_TRAILING, count, d.pos, src_len);
    if (src_len > 0) {
        unsigned last = src[src_len - 1];
        uint64_t shift = d.pos - src_len;
        if (last == 0)
            return plada_fail(err, PLADA_ERR_END, count, 0, 0);
        if (shift < 4) {
            uint64_t unit = UINT64_C(1) << (8 * shift);
            if (d.code >= unit || d.code + (256 - last) * unit < d.range)
                return plada_fail(err, PLADA_ERR_END, count, 0, 0);
        }
    }
    return PLADA_OK;
}
