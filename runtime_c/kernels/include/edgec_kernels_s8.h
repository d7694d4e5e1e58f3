/*
 * edgec int8 kernels: the library edgec's generated code calls for int8
 * (TFLite-quantized) layers.
 *
 * Every kernel is bit-exact with TensorFlow Lite Micro's reference integer
 * kernel of the same op (and so with CMSIS-NN): same int32 accumulation, same
 * MultiplyByQuantizedMultiplier rounding (TFLITE_SINGLE_ROUNDING=0), same
 * clamping. The compiler computes every multiplier, shift and offset ahead of
 * time with edgec/qmath.py, exactly as TFLite Micro's Prepare does; docs/kernels.md
 * maps TFLite op parameters to these arguments.
 *
 * Conventions
 * - Tensors are NHWC int8, densely packed. Weights and biases are const (flash).
 * - Offsets follow TFLite: input_offset = -input_zero_point,
 *   output_offset = +output_zero_point, filter zero points are 0 (symmetric).
 * - shift > 0 is a left shift, shift < 0 a right shift (TFLite's convention).
 * - act_min/act_max: the fused activation's quantized range (RELU, RELU6, ...)
 *   within [-128, 127].
 * - No kernel allocates. Kernels that need scratch take `buffer` and have a
 *   `..._get_buffer_size()`; the size depends on the build (DSP or portable)
 *   and may be 0, in which case buffer may be NULL.
 * - Kernels return EDGEC_OK, or EDGEC_ARG_ERROR for arguments they cannot
 *   handle (the compiler never emits those calls).
 * - On ARMv7E-M (Cortex-M4/M7/M33 with DSP) SIMD code paths are compiled in
 *   (unless EDGEC_KERNELS_PORTABLE is defined); elsewhere portable C. Both give
 *   identical bytes. The DSP convolutions may use the output tensor as working
 *   memory before writing their results into it; the output must not alias an
 *   input (it never does for CONV_2D).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef EDGEC_KERNELS_S8_H
#define EDGEC_KERNELS_S8_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t edgec_status;
#define EDGEC_OK 0
#define EDGEC_ARG_ERROR (-1)

/* Tensor extents. Activations: n=batch, h, w, c. Conv filters: n=output
 * channels, h, w, c=input channels per group. Depthwise filters: n=1, h, w,
 * c=output channels. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} edgec_dims;

/* A (height, width) pair: strides, paddings, dilations, pooling windows. */
typedef struct {
    int32_t h;
    int32_t w;
} edgec_hw;

/* Output scaling of conv/depthwise/fully-connected: per output channel when
 * per_channel != 0 (arrays of output-channel length), else multiplier[0] and
 * shift[0] apply to all channels. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t per_channel;
} edgec_quant_params;

/* CONV_2D (and the 1x1 variant). padding = TFLite's padding_values (top, left);
 * the bottom/right padding follows from the output size. */
typedef struct {
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* output zero point */
    edgec_hw stride;
    edgec_hw padding;
    edgec_hw dilation;
    int32_t act_min;
    int32_t act_max;
} edgec_conv_params;

/* DEPTHWISE_CONV_2D. Output channel oc reads input channel oc / depth_multiplier. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    edgec_hw stride;
    edgec_hw padding;
    edgec_hw dilation;
    int32_t depth_multiplier;
    int32_t act_min;
    int32_t act_max;
} edgec_dw_conv_params;

/* FULLY_CONNECTED. filter_offset = -filter zero point (0 for TFLite int8). */
typedef struct {
    int32_t input_offset;
    int32_t filter_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} edgec_fc_params;

/* AVERAGE_POOL_2D / MAX_POOL_2D (input and output share scale and zero point). */
typedef struct {
    edgec_hw stride;
    edgec_hw padding;
    edgec_hw filter;
    int32_t act_min;
    int32_t act_max;
} edgec_pool_params;

/* ADD: both inputs are brought to a common scale 2*max(s1, s2) after a left
 * shift (20 for int8), summed, and rescaled to the output. */
typedef struct {
    int32_t input1_offset;
    int32_t input1_multiplier;
    int32_t input1_shift; /* <= 0 */
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift; /* <= 0 */
    int32_t left_shift;   /* 20 */
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift; /* <= 0 */
    int32_t act_min;
    int32_t act_max;
} edgec_add_params;

/* MUL: output = requant((x1 + off1) * (x2 + off2)). */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} edgec_mul_params;

/* ---- convolution ------------------------------------------------------------------------ */

/*
 * General int8 convolution (TFLM ConvPerChannel): NHWC input, filter
 * (out_ch, kh, kw, in_ch / groups), int32 bias[out_ch] or NULL, any stride,
 * padding and dilation; grouped convolution when filter_dims->c < input_dims->c.
 * buffer: edgec_convolve_s8_get_buffer_size() bytes, 8-byte aligned (im2col
 * scratch of DSP builds; unused by the portable build).
 */
int32_t edgec_convolve_s8_get_buffer_size(const edgec_dims *input_dims, const edgec_dims *filter_dims);
edgec_status edgec_convolve_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                               const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                               int8_t *output);

/*
 * 1x1 convolution, no padding, dilation 1, any stride, no groups (the
 * pointwise layers of MobileNets / DS-CNNs). Same arguments and results as
 * edgec_convolve_s8; returns EDGEC_ARG_ERROR if those conditions do not hold.
 */
int32_t edgec_convolve_1x1_s8_get_buffer_size(const edgec_dims *input_dims, const edgec_dims *filter_dims);
edgec_status edgec_convolve_1x1_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                                   const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                   const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                   int8_t *output);

/*
 * Output channels of a pruned layer. Channels whose filters are all zero
 * (pruned away in training) output a constant whatever the input: requant(bias).
 * The compiler removes them from the filter, bias and quantisation arrays and
 * describes where the remaining ("live") channels and the constants go.
 */
typedef struct {
    int32_t live;              /* computed channels: rows of the filter, entries of bias / multiplier / shift */
    const int16_t *live_ch;    /* [live] their output channels, ascending */
    int32_t dead;              /* channels with a constant output */
    const int16_t *dead_ch;    /* [dead] their output channels */
    const int8_t *dead_value;  /* [dead] their output value */
} edgec_channel_map;

/*
 * edgec_convolve_1x1_s8 of a pruned layer, stride 1: filter_dims->n == map->live
 * rows; output_dims->c == map->live + map->dead channels. The same bytes as the
 * unpruned call. buffer: edgec_convolve_1x1_s8_get_buffer_size().
 */
edgec_status edgec_convolve_1x1_pruned_s8(void *buffer, const edgec_conv_params *params,
                                          const edgec_quant_params *quant, const edgec_channel_map *map,
                                          const edgec_dims *input_dims, const int8_t *input,
                                          const edgec_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                          const edgec_dims *output_dims, int8_t *output);

/*
 * Depthwise convolution (TFLM DepthwiseConvPerChannel): filter (1, kh, kw,
 * out_ch) with out_ch = in_ch * depth_multiplier. DSP builds take a fast path
 * for 3x3 filters with depth multiplier 1, dilation 1 and padding <= 1 (the
 * MobileNet / DS-CNN layers). Needs no scratch.
 */
edgec_status edgec_depthwise_conv_s8(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                     const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                     int8_t *output);

/* ---- fully connected ----------------------------------------------------------------------- */

/*
 * FULLY_CONNECTED (TFLM FullyConnected / FullyConnectedPerChannel):
 * input (batches, accum_depth), filter (output_depth, accum_depth), bias
 * int32[output_depth] or NULL, output (batches, output_depth). Per-tensor or
 * per-channel after quant->per_channel. Needs no scratch.
 */
edgec_status edgec_fully_connected_s8(const edgec_fc_params *params, const edgec_quant_params *quant, int32_t batches,
                                      int32_t accum_depth, int32_t output_depth, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output);

/* ---- elementwise ---------------------------------------------------------------------------- */

/*
 * ADD / MUL of two int8 tensors of size1 and size2 elements: equal sizes
 * (elementwise), or one of them 1 (a scalar broadcast against the other).
 * The output has max(size1, size2) elements and may alias an input.
 * General N-d broadcasting is left to the compiler (it splits it into these).
 */
edgec_status edgec_add_s8(const edgec_add_params *params, const int8_t *input1, int32_t size1, const int8_t *input2,
                          int32_t size2, int8_t *output);
edgec_status edgec_mul_s8(const edgec_mul_params *params, const int8_t *input1, int32_t size1, const int8_t *input2,
                          int32_t size2, int8_t *output);

/* ---- pooling -------------------------------------------------------------------------------- */

/* AVERAGE_POOL_2D: mean over the in-image part of each window, rounded half
 * away from zero. EDGEC_ARG_ERROR if a window lies fully outside the input. */
edgec_status edgec_avgpool_s8(const edgec_pool_params *params, const edgec_dims *input_dims, const int8_t *input,
                              const edgec_dims *output_dims, int8_t *output);

/* MAX_POOL_2D. */
edgec_status edgec_maxpool_s8(const edgec_pool_params *params, const edgec_dims *input_dims, const int8_t *input,
                              const edgec_dims *output_dims, int8_t *output);

/* ---- activations ---------------------------------------------------------------------------- */

/*
 * SOFTMAX int8 -> int8 over rows of row_size (TFLM reference_ops::Softmax, the
 * gemmlowp fixed-point exp with 5 integer bits, 12-bit accumulation). Output
 * scale 1/256, zero point -128. input_multiplier/input_left_shift/diff_min
 * from PreprocessSoftmaxScaling + CalculateInputRadius (qmath.softmax_params).
 */
edgec_status edgec_softmax_s8(const int8_t *input, int32_t num_rows, int32_t row_size, int32_t input_multiplier,
                              int32_t input_left_shift, int32_t diff_min, int8_t *output);

/*
 * Softmax int8 -> int8 at any output scale and zero point (ONNX QDQ models):
 * exp_table[256] = round(exp((d - 255) * beta * input_scale) * 2^20) indexed by
 * x - row max + 255, recip = round(2^16 / output_scale); one rounding, half to
 * even. row_size <= 2047. (qmath.softmax_lut_params / softmax_lut_s8.)
 */
edgec_status edgec_softmax_lut_s8(const int8_t *input, int32_t num_rows, int32_t row_size, const int32_t *exp_table,
                                  int32_t recip, int32_t output_zp, int8_t *output);

/*
 * LOGISTIC int8 (TFLM reference_integer_ops::Logistic, gemmlowp fixed point;
 * output scale 1/256, zero point -128) and TANH int8 (output scale 1/128,
 * zero point 0). Parameters from qmath.logistic_params / qmath.tanh_params.
 */
edgec_status edgec_logistic_s8(const int8_t *input, int32_t size, int32_t input_zero_point, int32_t input_range_radius,
                               int32_t input_multiplier, int32_t input_left_shift, int8_t *output);
edgec_status edgec_tanh_s8(const int8_t *input, int32_t size, int32_t input_zero_point, int32_t input_range_radius,
                           int32_t input_multiplier, int32_t input_left_shift, int8_t *output);

/*
 * Any int8 -> int8 elementwise function as a 256-entry table indexed by
 * input + 128 (qmath.logistic_lut_s8 / tanh_lut_s8 give tables equal to the two
 * kernels above, bit for bit). Output may alias input.
 */
edgec_status edgec_lut_s8(const int8_t *input, int32_t size, const int8_t *lut, int8_t *output);

/* ---- quantize / dequantize ------------------------------------------------------------------- */

/* QUANTIZE float32 -> int8: roundf(x / scale) + zero_point, clamped to int8 (NaN -> zero_point). */
edgec_status edgec_quantize_f32_s8(const float *input, int32_t size, float scale, int32_t zero_point,
                                   int8_t *output);

/* QUANTIZE int8 -> int8 (a change of scale / zero point): requant(x + input_offset) + output_offset.
 * Output may alias input. */
edgec_status edgec_requantize_s8(const int8_t *input, int32_t size, int32_t input_offset, int32_t multiplier,
                                 int32_t shift, int32_t output_offset, int8_t *output);

/* DEQUANTIZE int8 -> float32: scale * (x - zero_point). */
edgec_status edgec_dequantize_s8_f32(const int8_t *input, int32_t size, float scale, int32_t zero_point,
                                     float *output);

/* ---- data movement -------------------------------------------------------------------------- */

#define EDGEC_PAD_MAX_DIMS 5

/*
 * PAD / PADV2 with a constant (TFLM uses the output zero point unless a
 * constant is given). rank <= EDGEC_PAD_MAX_DIMS; dims, pad_before and
 * pad_after have `rank` entries, outermost first.
 */
edgec_status edgec_pad_s8(const int8_t *input, int32_t rank, const int32_t *dims, const int32_t *pad_before,
                          const int32_t *pad_after, int8_t pad_value, int8_t *output);

/*
 * CONCATENATION (TFLM requires equal scales and zero points for int8, so a
 * copy). Input i has shape (outer_size, axis_sizes[i], inner_size) where
 * outer_size is the product of the dims before the axis and inner_size the
 * product of those after it.
 */
edgec_status edgec_concat_s8(const int8_t *const *inputs, const int32_t *axis_sizes, int32_t num_inputs,
                             int32_t outer_size, int32_t inner_size, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_KERNELS_S8_H */
