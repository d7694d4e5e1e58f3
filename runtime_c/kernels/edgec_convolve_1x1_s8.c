/*
 * 1x1 int8 convolution (pointwise), no padding, dilation 1, any stride.
 *
 * DSP builds: edgec_nn_conv_1x1_s8 (edgec_nn_mat_mult_s8.c), weight-stationary:
 * each pair of output channels is widened once and run over all pixels, read
 * straight from the input. Portable builds: direct loops. The pruned variant
 * computes only the live channels (edgec_channel_map) and writes the constant
 * ones.
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

/* Direct loops (portable builds, and pruned layers the DSP path cannot take):
 * filter row oc goes to output channel out_ch[oc] (oc when out_ch is NULL). */
void edgec_nn_conv_1x1_direct(const edgec_conv_params *params, const edgec_quant_params *quant,
                                                 const edgec_dims *input_dims, const int8_t *input, int32_t rows,
                                  const int16_t *out_ch, const int8_t *filter, const int32_t *bias,
                                  const edgec_dims *output_dims, int8_t *output)
{
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    for (int32_t b = 0; b < input_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                const int8_t *px =
                    input + ((b * input_dims->h + oy * params->stride.h) * input_dims->w + ox * params->stride.w) * in_c;
                int8_t *out = output + ((b * output_dims->h + oy) * output_dims->w + ox) * out_c;
                const int8_t *w = filter;
                for (int32_t oc = 0; oc < rows; oc++, w += in_c) {
                    int32_t acc = bias != NULL ? bias[oc] : 0;
                    acc += edgec_dot_s8_offset(px, w, in_c, params->input_offset);
                    out[out_ch != NULL ? out_ch[oc] : oc] =
                        edgec_requantize_clamp(acc, quant->multiplier[oc * qstep], quant->shift[oc * qstep],
                                               params->output_offset, params->act_min, params->act_max);
                }
            }
        }
    }
}

void edgec_nn_fill_channels(const edgec_channel_map *map, const edgec_dims *output_dims, int8_t *output)
{
    /* output pixels are contiguous (stride 1, NHWC) */
    const int32_t out_c = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    for (int32_t i = 0; i < map->dead; i++) {
        int8_t *o = output + map->dead_ch[i];
        const int8_t v = map->dead_value[i];
        for (int32_t p = 0; p < pixels; p++, o += out_c) {
            *o = v;
        }
    }
}

static int edgec_conv_1x1_args_ok(const edgec_conv_params *params, const edgec_dims *input_dims,
                                  const edgec_dims *filter_dims, const edgec_dims *output_dims)
{
    return filter_dims->h == 1 && filter_dims->w == 1 && filter_dims->c == input_dims->c &&
           params->padding.h == 0 && params->padding.w == 0 && params->stride.h > 0 && params->stride.w > 0 &&
           input_dims->n == output_dims->n;
}

edgec_status edgec_convolve_1x1_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                                   const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                   const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                   int8_t *output)
{
    if (!edgec_conv_1x1_args_ok(params, input_dims, filter_dims, output_dims) || filter_dims->n != output_dims->c) {
        return EDGEC_ARG_ERROR;
    }
#if EDGEC_USE_DSP
    if (buffer == NULL) {
        return EDGEC_ARG_ERROR;
    }
    return edgec_nn_conv_1x1_s8(buffer, params, quant, input_dims, input, filter, bias, output_dims, output);
#else
    (void)buffer;
    edgec_nn_conv_1x1_direct(params, quant, input_dims, input, filter_dims->n, NULL, filter, bias, output_dims,
                             output);
    return EDGEC_OK;
#endif
}

edgec_status edgec_convolve_1x1_pruned_s8(void *buffer, const edgec_conv_params *params,
                                          const edgec_quant_params *quant, const edgec_channel_map *map,
                                          const edgec_dims *input_dims, const int8_t *input,
                                          const edgec_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                          const edgec_dims *output_dims, int8_t *output)
{
    if (!edgec_conv_1x1_args_ok(params, input_dims, filter_dims, output_dims) || params->stride.h != 1 ||
        params->stride.w != 1 || filter_dims->n != map->live || map->live + map->dead != output_dims->c) {
        return EDGEC_ARG_ERROR;
    }
#if EDGEC_USE_DSP
    if (buffer == NULL) {
        return EDGEC_ARG_ERROR;
    }
    /* (a tail call: this frame is gone while the weight-stationary path runs) */
    return edgec_nn_pw_pruned_s8(buffer, params, quant, map, input_dims, input, filter_dims, filter, bias,
                                 output_dims, output);
#else
    (void)buffer;
    edgec_nn_conv_1x1_direct(params, quant, input_dims, input, map->live, map->live_ch, filter, bias, output_dims,
                             output);
    edgec_nn_fill_channels(map, output_dims, output);
    return EDGEC_OK;
#endif
}
