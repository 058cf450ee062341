/* kernels.c: the bridge from libplada to the shared kernels of csrc/ (plada_core.c: bit
 * unpacking and packed labels; plada_cm.c: the format 1.1 range decoder). Those files are
 * compiled unchanged into both the Python package's C backend and this library, so the two
 * decoders run the same inner loops. uint64_t/int64_t (and uint32_t/int32_t) are corresponding
 * signed and unsigned types, which C allows to alias. */
#include "../plada_core.h"
#include "internal.h"

/* 15.2: preset -> parameters. */
static const plada_cm_params CM_PRESETS[] = {
    {4, 2, 2, 60},   /* 0 clustered */
    {0, 3, 4, 255},  /* 1 flat */
};

int pl_unpack_bits(const uint8_t *src, size_t src_len, size_t count, unsigned width, uint64_t *out)
{
    return plada_unpack_bits(src, src_len, count, width, out, NULL);
}

int pl_labels_packed(const uint8_t *src, size_t src_len, size_t count, unsigned width,
                     uint32_t n_classes, uint32_t *out, uint64_t *bad)
{
    plada_error err = {0, 0, 0};
    int status = plada_labels_decode(src, src_len, count, width, n_classes, (int32_t *)out, &err);
    *bad = err.position;
    return status;
}

int pl_cm_decode(unsigned preset, const uint8_t *stream, size_t stream_len, size_t count,
                 uint64_t n_ref, uint32_t n_classes, uint64_t *indices, uint32_t *labels,
                 uint64_t *bad)
{
    if (preset >= sizeof CM_PRESETS / sizeof *CM_PRESETS)
        return PLADA_ERR_PRESET;
    plada_error err = {0, 0, 0};
    int status = plada_cm_decode(stream, stream_len, count, n_ref, n_classes, &CM_PRESETS[preset],
                                 (int64_t *)indices, (int32_t *)labels, &err);
    *bad = err.position;
    return status;
}

const char *pl_kernel_message(int status)
{
    switch (status) {
    case PLADA_ERR_LENGTH: return "length differs from what the codec implies";
    case PLADA_ERR_WIDTH: return "block width above 64";
    case PLADA_ERR_PADDING: return "padding bits are not zero";
    case PLADA_ERR_RANGE: return "index >= n_ref";
    case PLADA_ERR_LABEL: return "label >= n_classes";
    case PLADA_ERR_COUNT: return "population count differs from count";
    case PLADA_ERR_CODED: return "raw value overflows its width";
    case PLADA_ERR_TRAILING: return "the stream holds bytes that were never read";
    case PLADA_ERR_CANONICAL: return "non-canonical: a tree-coded label already in the move-to-front list";
    case PLADA_ERR_PRESET: return "unknown context-model preset";
    case PLADA_ERR_START: return "the stream starts FF FF FF FF";
    case PLADA_ERR_END: return "non-canonical end of stream";
    default: return "kernel error";
    }
}
