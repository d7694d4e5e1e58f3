/*
 * The inner GEMM of the DSP convolutions: int8 weights times int16 im2col
 * columns, two output channels x two columns at a time, with SMLAD.
 *
 * Per 4 accumulation steps of a 2x2 tile: 2 weight words, one LDM of 4 column
 * words, 4 SXTB16, 8 SMLAD: 16 MACs in about 16 instructions plus the loop.
 * Weights stay in TFLite's layout: SXTB16 splits a word into (w0, w2) and
 * (w1, w3), so the columns are stored in that same "unordered" order and SMLAD
 * pairs match without repacking.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

#if EDGEC_USE_DSP

static inline int32_t edgec_pack_s16x2(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

/* Two s16x2 words as one 64-bit unit (lo word first): one LDRD/STRD. */
static inline int64_t edgec_pair64(int32_t lo, int32_t hi)
{
    return (int64_t)(((uint64_t)(uint32_t)hi << 32) | (uint32_t)lo);
}

static inline int32_t edgec_lo32(int64_t v)
{
    return (int32_t)(uint32_t)((uint64_t)v & 0xFFFFFFFFu);
}

static inline int32_t edgec_hi32(int64_t v)
{
    return (int32_t)(uint32_t)((uint64_t)v >> 32);
}

void edgec_nn_im2col_s8_to_s16x2(const int8_t *src, int32_t *cols, int32_t slot, int32_t len, int32_t offset)
{
    const int32_t offset2 = edgec_dup_s16(offset);
    int64_t *dst = (int64_t *)(void *)cols + slot;
    int32_t n = len >> 2;
    while (n-- > 0) {
        int32_t lo, hi;
        edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(src), offset2, &lo, &hi);
        src += 4;
        *dst = edgec_pair64(lo, hi);
        dst += 2;
    }
    switch (len & 3) {
    case 1:
        *dst = edgec_pair64(edgec_pack_s16x2(src[0] + offset, 0), 0);
        break;
    case 2:
        *dst = edgec_pair64(edgec_pack_s16x2(src[0] + offset, src[1] + offset), 0);
        break;
    case 3:
        *dst = edgec_pair64(edgec_pack_s16x2(src[0] + offset, src[1] + offset), edgec_pack_s16x2(src[2] + offset, 0));
        break;
    default:
        break;
    }
}

/* The len % 4 leftover products of one weight row with one packed column tail. */
static inline int32_t edgec_tail_dot(const int8_t *w, int64_t tail, int32_t r, int32_t acc)
{
    const int32_t c0 = edgec_lo32(tail);
    const int32_t c1 = edgec_hi32(tail);
    if (r > 0) {
        acc += (int32_t)w[0] * (int32_t)(int16_t)(c0 & 0xFFFF);
    }
    if (r > 1) {
        acc += (int32_t)w[1] * (c0 >> 16);
    }
    if (r > 2) {
        acc += (int32_t)w[2] * (int32_t)(int16_t)(c1 & 0xFFFF);
    }
    return acc;
}

void edgec_nn_mat_mult_kernel_s8_s16(const int8_t *weights, const int32_t *cols, int32_t out_ch, int32_t col_len,
                                     const edgec_quant_params *quant, const int32_t *bias, int32_t out_offset,
                                     int32_t act_min, int32_t act_max, int8_t *out0, int8_t *out1)
{
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    const int32_t groups = col_len >> 2;
    const int32_t rem = col_len & 3;
    const int64_t *tail = (const int64_t *)(const void *)cols + 2 * groups;
    const int8_t *wa = weights;
    int32_t ch = 0;

    for (; ch + 1 < out_ch; ch += 2) {
        const int8_t *wb = wa + col_len;
        const int64_t *c = (const int64_t *)(const void *)cols;
        int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        if (bias != NULL) {
            a0 = a1 = bias[ch];
            b0 = b1 = bias[ch + 1];
        }
        int32_t k = groups;
        while (k-- > 0) {
            int32_t w_lo, w_hi;
            const int64_t xc = c[0];
            const int64_t yc = c[1];
            const int32_t x0 = edgec_lo32(xc);
            const int32_t x1 = edgec_hi32(xc);
            const int32_t y0 = edgec_lo32(yc);
            const int32_t y1 = edgec_hi32(yc);
            c += 2;

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
        if (rem) {
            a0 = edgec_tail_dot(wa, tail[0], rem, a0);
            a1 = edgec_tail_dot(wa, tail[1], rem, a1);
            b0 = edgec_tail_dot(wb, tail[0], rem, b0);
            b1 = edgec_tail_dot(wb, tail[1], rem, b1);
            wb += rem;
        }
        out0[ch] = edgec_requantize_clamp(a0, mult[0], shift[0], out_offset, act_min, act_max);
        out1[ch] = edgec_requantize_clamp(a1, mult[0], shift[0], out_offset, act_min, act_max);
        out0[ch + 1] = edgec_requantize_clamp(b0, mult[qstep], shift[qstep], out_offset, act_min, act_max);
        out1[ch + 1] = edgec_requantize_clamp(b1, mult[qstep], shift[qstep], out_offset, act_min, act_max);
        mult += 2 * qstep;
        shift += 2 * qstep;
        wa = wb; /* the end of row ch + 1 is the start of row ch + 2 */
    }

    if (ch < out_ch) {
        const int64_t *c = (const int64_t *)(const void *)cols;
        int32_t a0 = 0, a1 = 0;
        if (bias != NULL) {
            a0 = a1 = bias[ch];
        }
        int32_t k = groups;
        while (k-- > 0) {
            int32_t w_lo, w_hi;
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wa), &w_lo, &w_hi);
            wa += 4;
            a0 = __smlad(w_lo, edgec_lo32(c[0]), a0);
            a0 = __smlad(w_hi, edgec_hi32(c[0]), a0);
            a1 = __smlad(w_lo, edgec_lo32(c[1]), a1);
            a1 = __smlad(w_hi, edgec_hi32(c[1]), a1);
            c += 2;
        }
        if (rem) {
            a0 = edgec_tail_dot(wa, tail[0], rem, a0);
            a1 = edgec_tail_dot(wa, tail[1], rem, a1);
        }
        out0[ch] = edgec_requantize_clamp(a0, mult[0], shift[0], out_offset, act_min, act_max);
        out1[ch] = edgec_requantize_clamp(a1, mult[0], shift[0], out_offset, act_min, act_max);
    }
}

void edgec_nn_mat_mult_kernel_s8_s16_1col(const int8_t *weights, const int32_t *cols, int32_t out_ch, int32_t col_len,
                                          const edgec_quant_params *quant, const int32_t *bias, int32_t out_offset,
                                          int32_t act_min, int32_t act_max, int8_t *out0)
{
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    const int32_t groups = col_len >> 2;
    const int32_t rem = col_len & 3;
    const int64_t *tail = (const int64_t *)(const void *)cols + 2 * groups;
    const int8_t *w = weights;

    for (int32_t ch = 0; ch < out_ch; ch++) {
        const int64_t *c = (const int64_t *)(const void *)cols;
        int32_t acc = bias != NULL ? bias[ch] : 0;
        int32_t k = groups;
        while (k-- > 0) {
            int32_t w_lo, w_hi;
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(w), &w_lo, &w_hi);
            w += 4;
            acc = __smlad(w_lo, edgec_lo32(c[0]), acc);
            acc = __smlad(w_hi, edgec_hi32(c[0]), acc);
            c += 2;
        }
        if (rem) {
            acc = edgec_tail_dot(w, tail[0], rem, acc);
            w += rem;
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
