/*
 * int8 PAD / PADV2 with a constant, up to EDGEC_PAD_MAX_DIMS dimensions.
 * Shapes are normalised to 5-D (leading ones); every innermost row is written
 * as memset(before) + memcpy(row) + memset(after), and wholly padded slabs of
 * outer dimensions with one memset.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

edgec_status edgec_pad_s8(const int8_t *input, int32_t rank, const int32_t *dims, const int32_t *pad_before,
                          const int32_t *pad_after, int8_t pad_value, int8_t *output)
{
    int32_t d[EDGEC_PAD_MAX_DIMS], lo[EDGEC_PAD_MAX_DIMS], hi[EDGEC_PAD_MAX_DIMS], od[EDGEC_PAD_MAX_DIMS];
    if (rank < 1 || rank > EDGEC_PAD_MAX_DIMS) {
        return EDGEC_ARG_ERROR;
    }
    const int32_t lead = EDGEC_PAD_MAX_DIMS - rank;
    for (int32_t i = 0; i < EDGEC_PAD_MAX_DIMS; i++) {
        const int32_t j = i - lead;
        d[i] = j >= 0 ? dims[j] : 1;
        lo[i] = j >= 0 ? pad_before[j] : 0;
        hi[i] = j >= 0 ? pad_after[j] : 0;
        if (d[i] < 0 || lo[i] < 0 || hi[i] < 0) {
            return EDGEC_ARG_ERROR;
        }
        od[i] = lo[i] + d[i] + hi[i];
    }
    /* Output slab sizes: elements per step of dimension i. */
    const int32_t s4 = od[4];
    const int32_t s3 = od[3] * s4;
    const int32_t s2 = od[2] * s3;
    const int32_t s1 = od[1] * s2;
    const int8_t *in = input;
    int8_t *out = output;

    memset(out, pad_value, (size_t)(lo[0] * s1));
    out += lo[0] * s1;
    for (int32_t i0 = 0; i0 < d[0]; i0++) {
        memset(out, pad_value, (size_t)(lo[1] * s2));
        out += lo[1] * s2;
        for (int32_t i1 = 0; i1 < d[1]; i1++) {
            memset(out, pad_value, (size_t)(lo[2] * s3));
            out += lo[2] * s3;
            for (int32_t i2 = 0; i2 < d[2]; i2++) {
                memset(out, pad_value, (size_t)(lo[3] * s4));
                out += lo[3] * s4;
                for (int32_t i3 = 0; i3 < d[3]; i3++) {
                    memset(out, pad_value, (size_t)lo[4]);
                    out += lo[4];
                    memcpy(out, in, (size_t)d[4]);
                    out += d[4];
                    in += d[4];
                    memset(out, pad_value, (size_t)hi[4]);
                    out += hi[4];
                }
                memset(out, pad_value, (size_t)(hi[3] * s4));
                out += hi[3] * s4;
            }
            memset(out, pad_value, (size_t)(hi[2] * s3));
            out += hi[2] * s3;
        }
        memset(out, pad_value, (size_t)(hi[1] * s2));
        out += hi[1] * s2;
    }
    memset(out, pad_value, (size_t)(hi[0] * s1));
    return EDGEC_OK;
}
