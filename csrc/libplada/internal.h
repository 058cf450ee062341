/* internal.h: what the sources of libplada share and do not export (not installed). */
#ifndef PLADA_INTERNAL_H
#define PLADA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define PLADA_HIDDEN __attribute__((visibility("hidden")))
#define PLADA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PLADA_HIDDEN
#define PLADA_PRINTF(f, a)
#endif

/* kernels.c: the kernels of csrc/plada_core.c and csrc/plada_cm.c (the same sources the Python
 * package's C backend builds), behind plain ints so that this header does not collide with
 * plada_core.h's names. Each returns 0 or a plada_core.h status, filling *bad (the entry). */
#define PL_KERNEL_RANGE 4
#define PL_KERNEL_LABEL 5
#define PL_KERNEL_PRESET 12
PLADA_HIDDEN int pl_unpack_bits(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                                uint64_t *out);
PLADA_HIDDEN int pl_labels_packed(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                                  uint32_t n_classes, uint32_t *out, uint64_t *bad);
/* The context-model body after its preset byte; PL_KERNEL_PRESET for an unknown preset. */
PLADA_HIDDEN int pl_cm_decode(unsigned preset, const uint8_t *stream, size_t stream_len, size_t count,
                              uint64_t n_ref, uint32_t n_classes, uint64_t *indices, uint32_t *labels,
                              uint64_t *bad);
PLADA_HIDDEN const char *pl_kernel_message(int status);

/* text.c: the text rules of FORMAT.md 5.6 and 5.7. */
/* 1 when data[0 .. size) is UTF-8 (RFC 3629: no surrogates, no overlong forms, <= U+10FFFF);
 * else 0 with *bad = the offset of the first byte of the bad sequence. */
PLADA_HIDDEN int pl_utf8_valid(const uint8_t *data, size_t size, size_t *bad);
/* Checks a metadata body (already UTF-8 without a BOM) against 5.7 rules 2-7: 0 when valid,
 * 1 when invalid (message filled), -1 when out of memory. No recursion; memory is at most
 * the body's size plus 16 bytes per key. */
PLADA_HIDDEN int pl_json_check(const uint8_t *text, size_t size, char *message, size_t message_size);

#endif
