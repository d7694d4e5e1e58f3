/*
 * 1x1 int8 convolution (pointwise), no padding, dilation 1, any stride.
 *
 * DSP builds: edgec_nn_conv_1x1_s8 (edgec_nn_mat_mult_s8.c), weight-stationary:
 * each pair of output channels is widened once and run over all pixels, read
 * straight from the input. Portable builds: direct loops.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

int32_t edgec_convolve_1x1_s8_get_buffer_size(const edgec_dims *input_dims, const edgec_dims *filter_dims)
{
    (void)filter_dims;
#if EDGEC_USE_DSP
    return 4 * EDGEC_IM2COL_WORDS(input_dims->c); /* two interleaved int16 columns */
#else
    (void)input_dims;
    return 0;
#endif
}

edgec_status edgec_convolve_1x1_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                                   const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                   const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                   int8_t *output)
{
    if (filter_dims->h != 1 || filter_dims->w != 1 || filter_dims->c != input_dims->c ||
        filter_dims->n != output_dims->c || params->padding.h != 0 || params->padding.w != 0 ||
        params->stride.h <= 0 || params->stride.w <= 0 || input_dims->n != output_dims->n) {
        return EDGEC_ARG_ERROR;
    }
#if EDGEC_USE_DSP
    if (buffer == NULL) {
        return EDGEC_ARG_ERROR;
    }
    return edgec_nn_conv_1x1_s8(buffer, params, quant, input_dims, input, filter, bias, output_dims, output);
#else
    (void)buffer;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t in_batch = input_dims->h * input_dims->w * in_c;
    const int32_t out_pixels = output_dims->h * output_dims->w;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = input + b * in_batch;
        int8_t *out = output + b * out_pixels * out_c;
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                const int8_t *px = in_b + (oy * params->stride.h * input_dims->w + ox * params->stride.w) * in_c;
                const int8_t *w = filter;
                const int32_t *mult = quant->multiplier;
                const int32_t *shift = quant->shift;
                for (int32_t oc = 0; oc < out_c; oc++) {
                    int32_t acc = bias != NULL ? bias[oc] : 0;
                    acc += edgec_dot_s8_offset(px, w, in_c, params->input_offset);
                    w += in_c;
                    *out++ = edgec_requantize_clamp(acc, *mult, *shift, params->output_offset, params->act_min,
                                                    params->act_max);
                    mult += qstep;
                    shift += qstep;
                }
            }
        }
    }
#endif
    return EDGEC_OK;
}
