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

/* im2col of one output pixel for one group: kh*kw taps of kc int8 (zero point for padding). */
static void edgec_conv_im2col_s8(const edgec_conv_params *params, const edgec_dims *input_dims,
                                 const int8_t *input_batch, const edgec_dims *filter_dims, int32_t group, int32_t in_y0,
                                 int32_t in_x0, int8_t *dst)
{
    const int32_t kc = filter_dims->c;
    const int8_t pad = (int8_t)(-params->input_offset);
    for (int32_t ky = 0; ky < filter_dims->h; ky++) {
        const int32_t iy = in_y0 + ky * params->dilation.h;
        if (iy < 0 || iy >= input_dims->h) {
            memset(dst, pad, (size_t)(kc * filter_dims->w));
            dst += kc * filter_dims->w;
            continue;
        }
        const int8_t *row = input_batch + (iy * input_dims->w) * input_dims->c + group * kc;
        for (int32_t kx = 0; kx < filter_dims->w; kx++) {
            const int32_t ix = in_x0 + kx * params->dilation.w;
            if (ix < 0 || ix >= input_dims->w) {
                memset(dst, pad, (size_t)kc);
            } else {
                memcpy(dst, row + ix * input_dims->c, (size_t)kc);
            }
            dst += kc;
        }
    }
}

edgec_status edgec_convolve_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                               const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims, int8_t *output)
{
    if (buffer == NULL || !edgec_conv_args_ok(params, input_dims, filter_dims, output_dims)) {
        return EDGEC_ARG_ERROR;
    }
    const int32_t groups = input_dims->c / filter_dims->c;
    const int32_t per_group = output_dims->c / groups;
    const int32_t col_len = filter_dims->h * filter_dims->w * filter_dims->c;
    int32_t *const cols = (int32_t *)buffer;
    int8_t *const stage = (int8_t *)buffer + 4 * edgec_conv_col_len_aligned(filter_dims);
    const int32_t in_batch_size = input_dims->h * input_dims->w * input_dims->c;
    const int32_t out_batch_size = output_dims->h * output_dims->w * output_dims->c;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = input + b * in_batch_size;
        int8_t *out_b = output + b * out_batch_size;
        for (int32_t g = 0; g < groups; g++) {
            const int8_t *w_g = filter + g * per_group * col_len;
            const int32_t *bias_g = bias != NULL ? bias + g * per_group : NULL;
            edgec_quant_params q_g = *quant;
            if (quant->per_channel) {
                q_g.multiplier += g * per_group;
                q_g.shift += g * per_group;
            }
            int32_t pending = 0;
            int8_t *pending_out = NULL;
            for (int32_t oy = 0; oy < output_dims->h; oy++) {
                const int32_t in_y0 = oy * params->stride.h - params->padding.h;
                for (int32_t ox = 0; ox < output_dims->w; ox++) {
                    const int32_t in_x0 = ox * params->stride.w - params->padding.w;
                    int8_t *out = out_b + (oy * output_dims->w + ox) * output_dims->c + g * per_group;
                    edgec_conv_im2col_s8(params, input_dims, in_b, filter_dims, g, in_y0, in_x0, stage);
                    edgec_nn_im2col_s8_to_s16x2(stage, cols, pending, col_len, params->input_offset);
                    if (pending == 0) {
                        pending_out = out;
                        pending = 1;
                    } else {
                        edgec_nn_mat_mult_kernel_s8_s16(w_g, cols, per_group, col_len, &q_g, bias_g,
                                                        params->output_offset, params->act_min, params->act_max,
                                                        pending_out, out);
                        pending = 0;
                    }
                }
            }
            if (pending) {
                edgec_nn_mat_mult_kernel_s8_s16_1col(w_g, cols, per_group, col_len, &q_g, bias_g, params->output_offset,
                                                     params->act_min, params->act_max, pending_out);
            }
        }
    }
    return EDGEC_OK;
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
