/*
 * Depthwise int8 convolution, bit-exact with TFLite Micro's
 * DepthwiseConvPerChannel.
 *
 * Channels are the inner, contiguous dimension, so the DSP path runs four
 * channels in parallel: one word of input and one of weights per tap, widened
 * with SXTAB16/SXTB16 and accumulated with SMLABB/SMLATT into four
 * accumulators. The 3x3 path (depth multiplier 1, dilation 1) unrolls the nine
 * taps for output pixels whose window lies inside the image; border pixels and
 * other shapes take the general loop.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

/* Output channels [c, c_end) of one output pixel, depth multiplier 1, taps
 * [ky0, ky1) x [kx0, kx1). in_px points at the input pixel of tap (0, 0)
 * (possibly outside the image: only valid taps are dereferenced). */
/* Kept out of line: inlined into the pixel loop it needs > 256 bytes of stack. */
static EDGEC_NOINLINE void edgec_dw_pixel_dm1(const edgec_dw_conv_params *params, const edgec_quant_params *quant, int32_t channels,
                               int32_t in_row_stride, const int8_t *in_px, const int8_t *filter, int32_t kw,
                               int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, const int32_t *bias, int8_t *out)
{
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t in_offset = params->input_offset;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    int32_t c = 0;

#if EDGEC_USE_DSP
    const int32_t offset2 = edgec_dup_s16(in_offset);
    for (; c + 3 < channels; c += 4) {
        int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        if (bias != NULL) {
            acc0 = bias[c];
            acc1 = bias[c + 1];
            acc2 = bias[c + 2];
            acc3 = bias[c + 3];
        }
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *in_row = in_px + ky * dil_h * in_row_stride + c;
            const int8_t *w_row = filter + ky * kw * channels + c;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                int32_t x02, x13, w02, w13;
                edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(in_row + kx * dil_w * channels), offset2, &x02, &x13);
                edgec_s8x4_to_s16x2x2(edgec_read_s8x4(w_row + kx * channels), &w02, &w13);
                acc0 = __smlabb(x02, w02, acc0);
                acc2 = __smlatt(x02, w02, acc2);
                acc1 = __smlabb(x13, w13, acc1);
                acc3 = __smlatt(x13, w13, acc3);
            }
        }
        const int32_t *m = quant->multiplier + c * qstep;
        const int32_t *s = quant->shift + c * qstep;
        const int32_t o = params->output_offset;
        out[c] = edgec_requantize_clamp(acc0, m[0], s[0], o, params->act_min, params->act_max);
        out[c + 1] = edgec_requantize_clamp(acc1, m[qstep], s[qstep], o, params->act_min, params->act_max);
        out[c + 2] = edgec_requantize_clamp(acc2, m[2 * qstep], s[2 * qstep], o, params->act_min, params->act_max);
        out[c + 3] = edgec_requantize_clamp(acc3, m[3 * qstep], s[3 * qstep], o, params->act_min, params->act_max);
    }
#endif
    for (; c < channels; c++) {
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *in_row = in_px + ky * dil_h * in_row_stride + c;
            const int8_t *w_row = filter + ky * kw * channels + c;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                acc += (int32_t)w_row[kx * channels] * ((int32_t)in_row[kx * dil_w * channels] + in_offset);
            }
        }
        out[c] = edgec_requantize_clamp(acc, quant->multiplier[c * qstep], quant->shift[c * qstep],
                                        params->output_offset, params->act_min, params->act_max);
    }
}

/* 3x3, depth multiplier 1, dilation 1, all nine taps inside the image. */
static EDGEC_NOINLINE void edgec_dw_pixel_3x3_inner(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     int32_t channels, int32_t in_row_stride, const int8_t *in_px,
                                     const int8_t *filter, const int32_t *bias, int8_t *out)
{
    const int32_t in_offset = params->input_offset;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t cs = channels;
    const int32_t rs = in_row_stride;
    int32_t c = 0;

#if EDGEC_USE_DSP
    const int32_t offset2 = edgec_dup_s16(in_offset);
    for (; c + 3 < channels; c += 4) {
        int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        if (bias != NULL) {
            acc0 = bias[c];
            acc1 = bias[c + 1];
            acc2 = bias[c + 2];
            acc3 = bias[c + 3];
        }
        const int8_t *ip = in_px + c;
        const int8_t *wp = filter + c;
        for (int32_t ky = 0; ky < 3; ky++) {
            int32_t x02, x13, w02, w13;
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip + cs), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp + cs), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip + 2 * cs), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp + 2 * cs), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            ip += rs;
            wp += 3 * cs;
        }
        const int32_t *m = quant->multiplier + c * qstep;
        const int32_t *s = quant->shift + c * qstep;
        const int32_t o = params->output_offset;
        out[c] = edgec_requantize_clamp(acc0, m[0], s[0], o, params->act_min, params->act_max);
        out[c + 1] = edgec_requantize_clamp(acc1, m[qstep], s[qstep], o, params->act_min, params->act_max);
        out[c + 2] = edgec_requantize_clamp(acc2, m[2 * qstep], s[2 * qstep], o, params->act_min, params->act_max);
        out[c + 3] = edgec_requantize_clamp(acc3, m[3 * qstep], s[3 * qstep], o, params->act_min, params->act_max);
    }
#endif
    for (; c < channels; c++) {
        const int8_t *ip = in_px + c;
        const int8_t *wp = filter + c;
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (int32_t ky = 0; ky < 3; ky++) {
            acc += (int32_t)wp[0] * ((int32_t)ip[0] + in_offset);
            acc += (int32_t)wp[cs] * ((int32_t)ip[cs] + in_offset);
            acc += (int32_t)wp[2 * cs] * ((int32_t)ip[2 * cs] + in_offset);
            ip += rs;
            wp += 3 * cs;
        }
        out[c] = edgec_requantize_clamp(acc, quant->multiplier[c * qstep], quant->shift[c * qstep],
                                        params->output_offset, params->act_min, params->act_max);
    }
}

edgec_status edgec_depthwise_conv_s8(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                     const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                     int8_t *output)
{
    const int32_t dm = params->depth_multiplier;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    if (dm <= 0 || out_c != in_c * dm || filter_dims->c != out_c || input_dims->n != output_dims->n ||
        params->stride.h <= 0 || params->stride.w <= 0 || dil_h <= 0 || dil_w <= 0) {
        return EDGEC_ARG_ERROR;
    }
    const int32_t in_row_stride = input_dims->w * in_c;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int is_3x3 = kh == 3 && kw == 3 && dm == 1 && dil_h == 1 && dil_w == 1;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = input + b * input_dims->h * in_row_stride;
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t in_y0 = oy * params->stride.h - params->padding.h;
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
                /* The first in-image tap (no pointer is formed outside the tensor). */
                const int8_t *in_px = (ky0 < ky1 && kx0 < kx1)
                                          ? in_b + (in_y0 + ky0 * dil_h) * in_row_stride + (in_x0 + kx0 * dil_w) * in_c
                                          : in_b;
                if (dm == 1) {
                    if (is_3x3 && ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3) {
                        edgec_dw_pixel_3x3_inner(params, quant, out_c, in_row_stride, in_px, filter, bias, out);
                    } else {
                        /* Rebase so tap (ky0, kx0) is at in_px and the filter starts there too. */
                        edgec_dw_pixel_dm1(params, quant, out_c, in_row_stride, in_px,
                                           filter + (ky0 * kw + kx0) * out_c, kw, 0, ky1 - ky0, 0, kx1 - kx0, bias,
                                           out);
                    }
                    continue;
                }
                /* Depth multiplier > 1: output channel oc reads input channel oc / dm. */
                for (int32_t ic = 0; ic < in_c; ic++) {
                    for (int32_t m = 0; m < dm; m++) {
                        const int32_t oc = ic * dm + m;
                        int32_t acc = bias != NULL ? bias[oc] : 0;
                        for (int32_t ky = ky0; ky < ky1; ky++) {
                            const int8_t *in_row = in_b + (in_y0 + ky * dil_h) * in_row_stride + ic;
                            const int8_t *w_row = filter + ky * kw * out_c + oc;
                            for (int32_t kx = kx0; kx < kx1; kx++) {
                                acc += (int32_t)w_row[kx * out_c] *
                                       ((int32_t)in_row[(in_x0 + kx * dil_w) * in_c] + params->input_offset);
                            }
                        }
                        out[oc] = edgec_requantize_clamp(acc, quant->multiplier[oc * qstep], quant->shift[oc * qstep],
                                                         params->output_offset, params->act_min, params->act_max);
                    }
                }
            }
        }
    }
    return EDGEC_OK;
}
