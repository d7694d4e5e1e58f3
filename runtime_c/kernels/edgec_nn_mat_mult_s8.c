/*
 * The inner GEMM of the DSP convolutions: int8 weights times int16 im2col
 * columns, two output channels x two columns at a time, with SMLAD.
 *
 * Per 4 accumulation steps of a 2x2 tile: 2 weight words (8 int8), 4 column
 * words, 4 SXTB16, 8 SMLAD = 16 MACs in about 18 instructions. The weights
 * stay in TFLite's layout: SXTB16 splits a word into (w0, w2) and (w1, w3), so
 * the columns are stored in that same "unordered" order and SMLAD pairs match.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

#if EDGEC_USE_DSP

void edgec_nn_s8_to_s16_unordered_offset(const int8_t *src, int16_t *dst, int32_t len, int32_t offset)
{
    const int32_t offset2 = edgec_dup_s16(offset);
    int32_t n = len >> 2;
    while (n-- > 0) {
        int32_t lo, hi;
        edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(src), offset2, &lo, &hi);
        src += 4;
        edgec_write_s16x2(dst, lo);
        edgec_write_s16x2(dst + 2, hi);
        dst += 4;
    }
    n = len & 3;
    while (n-- > 0) {
        *dst++ = (int16_t)(*src++ + offset);
    }
}

void edgec_nn_mat_mult_kernel_s8_s16(const int8_t *weights, const int16_t *col0, const int16_t *col1, int32_t out_ch,
                                     int32_t col_len, const edgec_quant_params *quant, const int32_t *bias,
                                     int32_t out_offset, int32_t act_min, int32_t act_max, int8_t *out0, int8_t *out1)
{
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    const int8_t *wa = weights;
    int32_t ch = 0;

    for (; ch + 1 < out_ch; ch += 2) {
        const int8_t *wb = wa + col_len;
        const int16_t *c0 = col0;
        const int16_t *c1 = col1;
        int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        if (bias != NULL) {
            a0 = a1 = bias[ch];
            b0 = b1 = bias[ch + 1];
        }
        int32_t k = col_len >> 2;
        while (k-- > 0) {
            int32_t w_lo, w_hi;
            const int32_t x0 = edgec_read_s16x2(c0);
            const int32_t x1 = edgec_read_s16x2(c0 + 2);
            const int32_t y0 = edgec_read_s16x2(c1);
            const int32_t y1 = edgec_read_s16x2(c1 + 2);
            c0 += 4;
            c1 += 4;

            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wa), &w_lo, &w_hi);
            wa += 4;
            a0 = __smlad(w_lo, x0, a0);
            a1 = __smlad(w_lo, y0, a1);
            a0 = __smlad(w_hi, x1, a0);
            a1 = __smlad(w_hi, y1, a1);

            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wb), &w_lo, &w_hi);
            wb += 4;
            b0 = __smlad(w_lo, x0, b0);
            b1 = __smlad(w_lo, y0, b1);
            b0 = __smlad(w_hi, x1, b0);
            b1 = __smlad(w_hi, y1, b1);
        }
        k = col_len & 3;
        while (k-- > 0) {
            const int32_t x = *c0++;
            const int32_t y = *c1++;
            const int32_t wva = *wa++;
            const int32_t wvb = *wb++;
            a0 += wva * x;
            a1 += wva * y;
            b0 += wvb * x;
            b1 += wvb * y;
        }
        out0[ch] = edgec_requantize_clamp(a0, mult[0], shift[0], out_offset, act_min, act_max);
        out1[ch] = edgec_requantize_clamp(a1, mult[0], shift[0], out_offset, act_min, act_max);
        out0[ch + 1] = edgec_requantize_clamp(b0, mult[qstep], shift[qstep], out_offset, act_min, act_max);
        out1[ch + 1] = edgec_requantize_clamp(b1, mult[qstep], shift[qstep], out_offset, act_min, act_max);
        mult += 2 * qstep;
        shift += 2 * qstep;
        wa = wb; /* row b ended where row b + 1 starts */
    }

    if (ch < out_ch) {
        const int16_t *c0 = col0;
        const int16_t *c1 = col1;
        int32_t a0 = 0, a1 = 0;
        if (bias != NULL) {
            a0 = a1 = bias[ch];
        }
        int32_t k = col_len >> 2;
        while (k-- > 0) {
            int32_t w_lo, w_hi;
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wa), &w_lo, &w_hi);
            wa += 4;
            a0 = __smlad(w_lo, edgec_read_s16x2(c0), a0);
            a0 = __smlad(w_hi, edgec_read_s16x2(c0 + 2), a0);
            a1 = __smlad(w_lo, edgec_read_s16x2(c1), a1);
            a1 = __smlad(w_hi, edgec_read_s16x2(c1 + 2), a1);
            c0 += 4;
            c1 += 4;
        }
        k = col_len & 3;
        while (k-- > 0) {
            const int32_t wv = *wa++;
            a0 += wv * *c0++;
            a1 += wv * *c1++;
        }
        out0[ch] = edgec_requantize_clamp(a0, mult[0], shift[0], out_offset, act_min, act_max);
        out1[ch] = edgec_requantize_clamp(a1, mult[0], shift[0], out_offset, act_min, act_max);
    }
}

void edgec_nn_mat_mult_kernel_s8_s16_1col(const int8_t *weights, const int16_t *col0, int32_t out_ch, int32_t col_len,
                                          const edgec_quant_params *quant, const int32_t *bias, int32_t out_offset,
                                          int32_t act_min, int32_t act_max, int8_t *out0)
{
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    const int8_t *w = weights;

    for (int32_t ch = 0; ch < out_ch; ch++) {
        const int16_t *c0 = col0;
        int32_t acc = bias != NULL ? bias[ch] : 0;
        int32_t k = col_len >> 2;
        while (k-- > 0) {
            int32_t w_lo, w_hi;
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(w), &w_lo, &w_hi);
            w += 4;
            acc = __smlad(w_lo, edgec_read_s16x2(c0), acc);
            acc = __smlad(w_hi, edgec_read_s16x2(c0 + 2), acc);
            c0 += 4;
        }
        k = col_len & 3;
        while (k-- > 0) {
            acc += (int32_t)*w++ * *c0++;
        }
        out0[ch] = edgec_requantize_clamp(acc, *mult, *shift, out_offset, act_min, act_max);
        mult += qstep;
        shift += qstep;
    }
}

#else
/* ISO C wants a non-empty translation unit; portable builds need none of the above. */
typedef int edgec_nn_mat_mult_s8_unused;
#endif /* EDGEC_USE_DSP */
