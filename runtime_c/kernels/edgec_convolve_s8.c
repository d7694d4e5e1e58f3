/*
 * General int8 convolution, bit-exact with TFLite Micro's ConvPerChannel.
 *
 * DSP builds: im2col of two output pixels at a time into int16 columns (input
 * offset added, out-of-image taps become 0), then the 2x2 SMLAD GEMM kernel.
 * Portable builds: direct loops with the window clipped to the image once per
 * output pixel, no scratch.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

static inline int32_t edgec_conv_col_len_aligned(const edgec_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * filter_dims->c;
    return (k + 3) & ~3;
}

int32_t edgec_convolve_s8_get_buffer_size(const edgec_dims *input_dims, const edgec_dims *filter_dims)
{
    (void)input_dims;
#if EDGEC_USE_DSP
    /* Two interleaved int16 columns, then one int8 staging column. */
    return 5 * edgec_conv_col_len_aligned(filter_dims);
#else
    (void)filter_dims;
    return 0;
#endif
}

static int edgec_conv_args_ok(const edgec_conv_params *params, const edgec_dims *input_dims,
                              const edgec_dims *filter_dims, const edgec_dims *output_dims)
{
    if (filter_dims->c <= 0 || input_dims->c % filter_dims->c != 0) {
        return 0;
    }
    const int32_t groups = input_dims->c / filter_dims->c;
    if (output_dims->c % groups != 0 || output_dims->c != filter_dims->n) {
        return 0;
    }
    if (params->stride.h <= 0 || params->stride.w <= 0 || params->dilation.h <= 0 || params->dilation.w <= 0) {
        return 0;
    }
    return input_dims->n == output_dims->n;
}

#if EDGEC_USE_DSP

/* Zero groups of one column (padding taps: x + input_offset = 0). */
static inline int32_t *edgec_conv_zero_groups(int32_t *dst, int32_t n4)
{
    while (n4-- > 0) {
        dst[0] = 0;
        dst[1] = 0;
        dst += 4;
    }
    return dst;
}

/*
 * The four bytes [s, s + 4) of a window row over an image row of n bytes (n >= 4,
 * or n == 0 for a row outside the image): the row's bytes where they exist, pad4's
 * elsewhere. Whole-word reads that never leave the row, so a window sticking out
 * of the image costs a shift and a mask instead of a branch per element.
 */
static inline int32_t edgec_conv_row_word(const int8_t *row, int32_t n, int32_t s, uint32_t pad4)
{
    if (s >= 0 && s + 4 <= n) {
        return edgec_read_s8x4(row + s);
    }
    if (n == 0 || s + 4 <= 0 || s >= n) {
        return (int32_t)pad4;
    }
    uint32_t v, keep;
    if (s < 0) {
        v = (uint32_t)edgec_read_s8x4(row) << (-8 * s);
        keep = ~0u << (-8 * s);
    } else {
        v = (uint32_t)edgec_read_s8x4(row + n - 4) >> (8 * (s + 4 - n));
        keep = ~0u >> (8 * (s + 4 - n));
    }
    return (int32_t)((v & keep) | (pad4 & ~keep));
}

/* Whether edgec_conv_im2col_words applies: window rows that are contiguous whole
 * words of the input (kc == in_c, dilation 1 along x, kw * kc % 4 == 0) but
 * pixels that are not (kc % 4 != 0: with whole-word pixels edgec_conv_im2col
 * widens or zeroes each pixel directly), image rows of at least 4 bytes. */
static int edgec_conv_by_words(const edgec_conv_params *params, const edgec_dims *input_dims,
                               const edgec_dims *filter_dims)
{
    return filter_dims->c == input_dims->c && (filter_dims->c & 3) != 0 && params->dilation.w == 1 &&
           ((filter_dims->w * filter_dims->c) & 3) == 0 && input_dims->w * input_dims->c >= 4;
}

/*
 * im2col of one output pixel (window at in_y0, in_x0) into column dst of the
 * interleaved layout when edgec_conv_by_words holds: first layers such as the
 * KWS 10x4 one-channel convolution, whose windows are mostly on the border.
 * Column by column of words: where a word of the window lies relative to its
 * image row (inside, partly, outside) is the same on every row, so it is worked
 * out once as a read offset, two shifts and a mask, not branched on per row.
 */
static EDGEC_NOINLINE void edgec_conv_im2col_words(const edgec_conv_params *params, const edgec_dims *input_dims,
                                                   const edgec_dims *filter_dims, const int8_t *input_batch,
                                                   int32_t in_y0, int32_t in_x0, int32_t *dst)
{
    const int32_t kh = filter_dims->h, dil_h = params->dilation.h;
    const int32_t row_len = filter_dims->w * filter_dims->c;
    const int32_t row_bytes = input_dims->w * input_dims->c;
    const int32_t step = row_len; /* dst words per window row: 4 per group of 4 bytes */
    const uint32_t pad4 = 0x01010101u * (uint8_t)(-params->input_offset);
    const int32_t offset2 = edgec_dup_s16(params->input_offset);
    /* window rows [ky0, ky1) are inside the image */
    const int32_t ky0 = in_y0 < 0 ? EDGEC_MIN((dil_h - 1 - in_y0) / dil_h, kh) : 0;
    const int32_t ky1 = EDGEC_MAX(in_y0 < input_dims->h ? EDGEC_MIN((input_dims->h - 1 - in_y0) / dil_h + 1, kh) : 0,
                                  ky0);
    const int32_t s0 = in_x0 * input_dims->c;
    for (int32_t s = s0; s < s0 + row_len; s += 4, dst += 4) {
        /* bytes [s, s + 4) of each row: ((word at off) >> shr << shl) & keep, pad elsewhere */
        int32_t off = s, shr = 0, shl = 0;
        uint32_t keep = ~0u;
        if (s + 4 <= 0 || s >= row_bytes) {
            off = 0;
            keep = 0;
        } else if (s < 0) {
            off = 0;
            shl = -8 * s;
            keep = ~0u << shl;
        } else if (s + 4 > row_bytes) {
            off = row_bytes - 4;
            shr = 8 * (s + 4 - row_bytes);
            keep = ~0u >> shr;
        }
        const uint32_t fill = pad4 & ~keep;
        int32_t *d = dst;
        int32_t ky = 0;
        for (; ky < ky0; ky++, d += step) {
            d[0] = d[1] = 0;
        }
        if (ky < ky1) {
            const int8_t *p = input_batch + (in_y0 + ky * dil_h) * row_bytes + off;
            for (; ky < ky1; ky++, d += step, p += dil_h * row_bytes) {
                const int32_t v = (int32_t)(((((uint32_t)edgec_read_s8x4(p) >> shr) << shl) & keep) | fill);
                d[0] = __sxtab16(offset2, v);
                d[1] = edgec_sxtab16_ror8(offset2, v);
            }
        }
        for (; ky < kh; ky++, d += step) {
            d[0] = d[1] = 0;
        }
    }
}

/*
 * im2col of one output pixel for one group into column `slot` of cols, int16
 * with the input offset added. A window row whose kw * kc bytes are a multiple
 * of four (and contiguous: dilation 1) is widened straight from the input
 * (edgec_conv_im2col_words when its pixels are not whole words); other shapes
 * (3-channel first layers) are staged as int8 first, a word at a time
 * (edgec_conv_row_word) when the window rows are contiguous.
 */
static EDGEC_NOINLINE void edgec_conv_im2col(const edgec_conv_params *params, const edgec_dims *input_dims,
                              const int8_t *input_batch, const edgec_dims *filter_dims, int32_t group, int32_t in_y0,
                              int32_t in_x0, int8_t *stage, int32_t *cols, int32_t slot)
{
    const int32_t kc = filter_dims->c;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t row_len = kw * kc;
    const int8_t pad = (int8_t)(-params->input_offset);
    const int32_t offset2 = edgec_dup_s16(params->input_offset);
    const int x_inside = in_x0 >= 0 && in_x0 + (kw - 1) * dil_w < input_dims->w;

    if (dil_w == 1 && (row_len & 3) == 0) {
        int32_t *dst = cols + 2 * slot;
        for (int32_t ky = 0; ky < kh; ky++) {
            const int32_t iy = in_y0 + ky * dil_h;
            if (iy < 0 || iy >= input_dims->h) {
                dst = edgec_conv_zero_groups(dst, row_len >> 2);
                continue;
            }
            const int8_t *row = input_batch + iy * input_dims->w * in_c + group * kc;
            if (x_inside && kc == in_c) {
                dst = edgec_nn_widen_groups(row + in_x0 * in_c, dst, row_len >> 2, offset2);
            } else if ((kc & 3) == 0) {
                for (int32_t kx = 0; kx < kw; kx++) {
                    const int32_t ix = in_x0 + kx;
                    dst = (ix < 0 || ix >= input_dims->w)
                              ? edgec_conv_zero_groups(dst, kc >> 2)
                              : edgec_nn_widen_groups(row + ix * in_c, dst, kc >> 2, offset2);
                }
            } else {
                int8_t *st = stage;
                for (int32_t kx = 0; kx < kw; kx++) {
                    const int32_t ix = in_x0 + kx;
                    for (int32_t i = 0; i < kc; i++) {
                        st[i] = (ix < 0 || ix >= input_dims->w) ? pad : row[ix * in_c + i];
                    }
                    st += kc;
                }
                dst = edgec_nn_widen_groups(stage, dst, row_len >> 2, offset2);
            }
        }
        return;
    }

    /* General: stage the whole window as int8, then widen it. */
    int8_t *st = stage;
    const int32_t row_bytes = input_dims->w * in_c;
    if (dil_w == 1 && kc == in_c && row_bytes >= 4) {
        /* contiguous window rows (3-channel first layers) */
        const uint32_t pad4 = 0x01010101u * (uint8_t)pad;
        for (int32_t ky = 0; ky < kh; ky++, st += row_len) {
            const int32_t iy = in_y0 + ky * dil_h;
            const int row_in = iy >= 0 && iy < input_dims->h;
            const int8_t *row = row_in ? input_batch + iy * row_bytes : input_batch;
            const int32_t n = row_in ? row_bytes : 0;
            int32_t i = 0;
            for (; i + 4 <= row_len; i += 4) {
                edgec_write_s8x4(st + i, edgec_conv_row_word(row, n, in_x0 * in_c + i, pad4));
            }
            if (i < row_len) {
                uint32_t v = (uint32_t)edgec_conv_row_word(row, n, in_x0 * in_c + i, pad4);
                for (; i < row_len; i++, v >>= 8) {
                    st[i] = (int8_t)v;
                }
            }
        }
        edgec_nn_im2col_s8_to_s16x2(stage, cols, slot, kh * row_len, params->input_offset);
        return;
    }
    for (int32_t ky = 0; ky < kh; ky++) {
        const int32_t iy = in_y0 + ky * dil_h;
        const int8_t *row = input_batch + iy * input_dims->w * in_c + group * kc;
        const int row_inside = iy >= 0 && iy < input_dims->h;
        for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = in_x0 + kx * dil_w;
            if (!row_inside || ix < 0 || ix >= input_dims->w) {
                for (int32_t i = 0; i < kc; i++) {
                    st[i] = pad;
                }
            } else {
                const int8_t *src = row + ix * in_c;
                for (int32_t i = 0; i < kc; i++) {
                    st[i] = src[i];
                }
            }
            st += kc;
        }
    }
    edgec_nn_im2col_s8_to_s16x2(stage, cols, slot, kh * kw * kc, params->input_offset);
}

/* im2col + GEMM over all output pixels outside cv->range (empty: all). */
static EDGEC_NOINLINE void edgec_conv_im2col_gemm(edgec_nn_conv *cv)
{
    const edgec_dims *input_dims = cv->input_dims, *filter_dims = cv->filter_dims, *output_dims = cv->output_dims;
    const int32_t groups = input_dims->c / filter_dims->c;
    const int32_t per_group = output_dims->c / groups;
    const int32_t col_len = filter_dims->h * filter_dims->w * filter_dims->c;
    int32_t *const cols = (int32_t *)cv->buffer;
    int8_t *const stage = (int8_t *)cv->buffer + 4 * edgec_conv_col_len_aligned(filter_dims);
    const int32_t *interior = cv->range;
    const int by_words = edgec_conv_by_words(cv->params, input_dims, filter_dims);

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = cv->input + b * input_dims->h * input_dims->w * input_dims->c;
        int8_t *out_b = cv->output + b * output_dims->h * output_dims->w * output_dims->c;
        for (int32_t g = 0; g < groups; g++) {
            const int8_t *w_g = cv->filter + g * per_group * col_len;
            const int32_t *bias_g = cv->bias != NULL ? cv->bias + g * per_group : NULL;
            /* the group's quantisation: cv->rq moved to its first channel (restored below) */
            cv->rq.mult += g * per_group * cv->rq.qstep;
            cv->rq.shift += g * per_group * cv->rq.qstep;
            int32_t pending = 0;
            int8_t *pending_out = NULL;
            for (int32_t oy = 0; oy < output_dims->h; oy++) {
                const int32_t in_y0 = oy * cv->params->stride.h - cv->params->padding.h;
                const int row_interior = oy >= interior[0] && oy < interior[1];
                for (int32_t ox = 0; ox < output_dims->w; ox++) {
                    if (row_interior && ox == interior[2]) {
                        ox = interior[3] - 1;
                        continue;
                    }
                    const int32_t in_x0 = ox * cv->params->stride.w - cv->params->padding.w;
                    int8_t *out = out_b + (oy * output_dims->w + ox) * output_dims->c + g * per_group;
                    if (by_words) {
                        edgec_conv_im2col_words(cv->params, input_dims, filter_dims, in_b, in_y0, in_x0,
                                                cols + 2 * pending);
                    } else {
                        edgec_conv_im2col(cv->params, input_dims, in_b, filter_dims, g, in_y0, in_x0, stage, cols,
                                          pending);
                    }
                    if (pending == 0) {
                        pending_out = out;
                        pending = 1;
                    } else {
                        edgec_nn_gemm_s8_s16(w_g, cols, per_group, col_len, bias_g, &cv->rq, pending_out, out);
                        pending = 0;
                    }
                }
            }
            if (pending) {
                /* The odd last pixel: both columns hold it, both outputs land on it. */
                const int32_t n = EDGEC_IM2COL_WORDS(col_len) >> 2;
                for (int32_t i = 0; i < n; i++) {
                    cols[4 * i + 2] = cols[4 * i];
                    cols[4 * i + 3] = cols[4 * i + 1];
                }
                edgec_nn_gemm_s8_s16(w_g, cols, per_group, col_len, bias_g, &cv->rq, pending_out, pending_out);
            }
            cv->rq.mult -= g * per_group * cv->rq.qstep;
            cv->rq.shift -= g * per_group * cv->rq.qstep;
        }
    }
}

/* The interior output range of the weight-stationary scheme (edgec_nn_conv_interior_s8), or an empty one. */
static void edgec_conv_interior_range(edgec_nn_conv *cv)
{
    const edgec_conv_params *params = cv->params;
    const edgec_dims *input_dims = cv->input_dims, *filter_dims = cv->filter_dims, *output_dims = cv->output_dims;
    int32_t *r = cv->range;
    r[0] = r[1] = r[2] = r[3] = 0;
    const int32_t row_len = filter_dims->w * filter_dims->c;
    const int row_ok = (row_len & 3) == 0 ? row_len >= 8
                                          : row_len <= EDGEC_WS_MAX_ROW && row_len >= 8 &&
                                                filter_dims->h * ((row_len + 3) & ~3) <= EDGEC_WS_STACK_WORDS;
    if (filter_dims->c != input_dims->c || params->dilation.h != 1 || params->dilation.w != 1 || !row_ok ||
        (output_dims->c & 1) != 0 || !cv->rq.fast || !cv->rq.full_range) {
        return;
    }
    const int32_t sh = params->stride.h, sw = params->stride.w;
    const int32_t ph = params->padding.h, pw = params->padding.w;
    const int32_t y0 = EDGEC_MIN((ph + sh - 1) / sh, output_dims->h);
    const int32_t x0 = EDGEC_MIN((pw + sw - 1) / sw, output_dims->w);
    int32_t y1 = EDGEC_MIN(EDGEC_MAX((input_dims->h - filter_dims->h + ph) / sh + 1, y0), output_dims->h);
    int32_t x1 = EDGEC_MIN(EDGEC_MAX((input_dims->w - filter_dims->w + pw) / sw + 1, x0), output_dims->w);
    if (row_len & 3) {
        /* whole-word reads of a window row: keep the windows off the last input row */
        while (y1 > y0 && (y1 - 1) * sh - ph + filter_dims->h - 1 >= input_dims->h - 1) {
            y1--;
        }
    }
    /* An odd last interior column goes to the border loop, where it gets a partner. */
    x1 -= (x1 - x0) & 1;
    if ((row_len & 3) && (output_dims->h - y1) * output_dims->w * output_dims->c < EDGEC_WS_TAIL_BYTES) {
        return; /* no room for the padded weights in the last output rows */
    }
    /* Widening a channel pair's weights costs about as much as ~16 pixels of
     * im2col: small interiors stay on the im2col path. */
    if (y1 > y0 && x1 > x0 && (y1 - y0) * (x1 - x0) >= 64) {
        r[0] = y0;
        r[1] = y1;
        r[2] = x0;
        r[3] = x1;
    }
}

/* Same arguments as edgec_convolve_s8, which tail-calls it (its frame then
 * does not add to the stack). */
static EDGEC_NOINLINE edgec_status edgec_conv_dsp(void *buffer, const edgec_conv_params *params,
                                                  const edgec_quant_params *quant, const edgec_dims *input_dims,
                                                  const int8_t *input, const edgec_dims *filter_dims,
                                                  const int8_t *filter, const int32_t *bias,
                                                  const edgec_dims *output_dims, int8_t *output)
{
    edgec_nn_conv cv = {params, input_dims, input, filter_dims, filter, bias, output_dims, output, buffer,
                        {0}, {0, 0, 0, 0}};
    edgec_nn_rq_init(&cv.rq, quant, output_dims->c, bias, filter_dims->h * filter_dims->w * filter_dims->c,
                     params->output_offset, params->act_min, params->act_max);
    /* Interior pixels by the weight-stationary scheme when it applies; then the
     * border ones (or all) by im2col + GEMM. */
    edgec_conv_interior_range(&cv);
    if (cv.range[1] > cv.range[0]) {
        edgec_nn_conv_interior_s8(&cv);
    }
    edgec_conv_im2col_gemm(&cv);
    return EDGEC_OK;
}

static EDGEC_NOINLINE edgec_status edgec_conv_1x1_dsp(void *buffer, const edgec_conv_params *params,
                                                      const edgec_quant_params *quant, const edgec_dims *input_dims,
                                                      const int8_t *input, const edgec_dims *filter_dims,
                                                      const int8_t *filter, const int32_t *bias,
                                                      const edgec_dims *output_dims, int8_t *output)
{
    (void)filter_dims;
    return edgec_nn_conv_1x1_s8(buffer, params, quant, input_dims, input, filter, bias, output_dims, output);
}

edgec_status edgec_convolve_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                               const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims, int8_t *output)
{
    if (buffer == NULL || !edgec_conv_args_ok(params, input_dims, filter_dims, output_dims)) {
        return EDGEC_ARG_ERROR;
    }
    if (filter_dims->c == input_dims->c && filter_dims->h == 1 && filter_dims->w == 1 && params->padding.h == 0 &&
        params->padding.w == 0) {
        /* Pointwise at any stride: no window to gather (its scratch fits in ours). */
        return edgec_conv_1x1_dsp(buffer, params, quant, input_dims, input, filter_dims, filter, bias, output_dims,
                                  output);
    }
    return edgec_conv_dsp(buffer, params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output);
}

#else /* portable */

edgec_status edgec_convolve_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                               const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims, int8_t *output)
{
    (void)buffer;
    if (!edgec_conv_args_ok(params, input_dims, filter_dims, output_dims)) {
        return EDGEC_ARG_ERROR;
    }
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t kc = filter_dims->c;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t per_group = out_c / (in_c / kc);
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t in_offset = params->input_offset;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = input + b * input_dims->h * input_dims->w * in_c;
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t in_y0 = oy * params->stride.h - params->padding.h;
            /* Taps ky in [ky0, ky1) fall inside the image. */
            int32_t ky0 = 0, ky1 = kh;
            while (ky0 < kh && in_y0 + ky0 * dil_h < 0) {
                ky0++;
            }
            while (ky1 > ky0 && in_y0 + (ky1 - 1) * dil_h >= input_dims->h) {
                ky1--;
            }
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                const int32_t in_x0 = ox * params->stride.w - params->padding.w;
                int32_t kx0 = 0, kx1 = kw;
                while (kx0 < kw && in_x0 + kx0 * dil_w < 0) {
                    kx0++;
                }
                while (kx1 > kx0 && in_x0 + (kx1 - 1) * dil_w >= input_dims->w) {
                    kx1--;
                }
                int8_t *out = output + ((b * output_dims->h + oy) * output_dims->w + ox) * out_c;
                const int32_t *mult = quant->multiplier;
                const int32_t *shift = quant->shift;
                for (int32_t oc = 0; oc < out_c; oc++) {
                    const int32_t g = oc / per_group;
                    const int8_t *w_oc = filter + oc * kh * kw * kc;
                    int32_t acc = bias != NULL ? bias[oc] : 0;
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        const int8_t *in_row = in_b + ((in_y0 + ky * dil_h) * input_dims->w) * in_c + g * kc;
                        const int8_t *w_row = w_oc + ky * kw * kc;
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            acc += edgec_dot_s8_offset(in_row + (in_x0 + kx * dil_w) * in_c, w_row + kx * kc, kc,
                                                       in_offset);
                        }
                    }
                    out[oc] = edgec_requantize_clamp(acc, *mult, *shift, params->output_offset, params->act_min,
                                                     params->act_max);
                    mult += qstep;
                    shift += qstep;
                }
            }
        }
    }
    return EDGEC_OK;
}

#endif /* EDGEC_USE_DSP */
