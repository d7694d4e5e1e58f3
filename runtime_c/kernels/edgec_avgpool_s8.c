/*
 * int8 AVERAGE_POOL_2D, bit-exact with TFLite Micro's
 * reference_integer_ops::AveragePool: the window is clipped to the image and
 * the sum divided by the number of in-image taps, rounding half away from zero.
 *
 * Channels are innermost, so each window row is a run of contiguous pixels;
 * the channel loop is innermost for sequential reads. DSP builds sum four
 * channels at a time in 16-bit lanes (SXTAB16) when the window has at most 255
 * taps (|sum| <= 255 * 128 fits): 3 instructions per 4 inputs instead of ~8 each.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

edgec_status edgec_avgpool_s8(const edgec_pool_params *params, const edgec_dims *input_dims, const int8_t *input,
                              const edgec_dims *output_dims, int8_t *output)
{
    const int32_t ch = input_dims->c;
    if (output_dims->c != ch || output_dims->n != input_dims->n || params->stride.h <= 0 || params->stride.w <= 0) {
        return EDGEC_ARG_ERROR;
    }
    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = input + b * input_dims->h * input_dims->w * ch;
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t y0 = oy * params->stride.h - params->padding.h;
            const int32_t ys = EDGEC_MAX(0, -y0);
            const int32_t ye = EDGEC_MIN(params->filter.h, input_dims->h - y0);
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                const int32_t x0 = ox * params->stride.w - params->padding.w;
                const int32_t xs = EDGEC_MAX(0, -x0);
                const int32_t xe = EDGEC_MIN(params->filter.w, input_dims->w - x0);
                const int32_t count = (ye - ys) * (xe - xs);
                if (ye <= ys || xe <= xs) {
                    return EDGEC_ARG_ERROR; /* TFLM fails the same way */
                }
                int8_t *out = output + ((b * output_dims->h + oy) * output_dims->w + ox) * ch;
                int32_t c = 0;
#if EDGEC_USE_DSP
                if (count <= 255) {
                    for (; c + 3 < ch; c += 4) {
                        int32_t s02 = 0, s13 = 0;
                        for (int32_t fy = ys; fy < ye; fy++) {
                            const int8_t *row = in_b + ((y0 + fy) * input_dims->w + x0 + xs) * ch + c;
                            for (int32_t fx = 0; fx < xe - xs; fx++, row += ch) {
                                const int32_t v = edgec_read_s8x4(row);
                                s02 = __sxtab16(s02, v);
                                s13 = edgec_sxtab16_ror8(s13, v);
                            }
                        }
                        const int32_t sums[4] = {(int16_t)(s02 & 0xFFFF), (int16_t)(s13 & 0xFFFF),
                                                 (int16_t)((uint32_t)s02 >> 16), (int16_t)((uint32_t)s13 >> 16)};
                        for (int32_t i = 0; i < 4; i++) {
                            int32_t acc = sums[i];
                            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                            acc = EDGEC_MAX(acc, params->act_min);
                            acc = EDGEC_MIN(acc, params->act_max);
                            out[c + i] = (int8_t)acc;
                        }
                    }
                }
#endif
                for (; c < ch; c++) {
                    int32_t acc = 0;
                    for (int32_t fy = ys; fy < ye; fy++) {
                        const int8_t *row = in_b + ((y0 + fy) * input_dims->w + x0 + xs) * ch + c;
                        for (int32_t fx = 0; fx < xe - xs; fx++) {
                            acc += row[fx * ch];
                        }
                    }
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    acc = EDGEC_MAX(acc, params->act_min);
                    acc = EDGEC_MIN(acc, params->act_max);
                    out[c] = (int8_t)acc;
                }
            }
        }
    }
    return EDGEC_OK;
}
