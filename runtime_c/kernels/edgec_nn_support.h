/*
 * Private helpers of the int8 kernels: TFLite's fixed-point arithmetic and the
 * one switch between the DSP (ARMv7E-M SIMD) and the portable C code paths.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef EDGEC_NN_SUPPORT_H
#define EDGEC_NN_SUPPORT_H

#include <stdint.h>
#include <string.h>

#include "edgec_kernels_s8.h"

/*
 * The one DSP switch: the SIMD code paths are compiled when
 * `defined(__ARM_FEATURE_DSP) && !defined(EDGEC_KERNELS_PORTABLE)`, so firmware
 * can force the portable C path on a DSP core (-DEDGEC_KERNELS_PORTABLE) to
 * compare size and speed; EDGEC_NO_DSP is an older spelling of the same.
 * EDGEC_EMULATE_DSP compiles the DSP code path on any host with C versions of
 * the ACLE intrinsics, so tests can check that it gives the same bytes as the
 * portable path.
 */
#if defined(EDGEC_NO_DSP) && !defined(EDGEC_KERNELS_PORTABLE)
#define EDGEC_KERNELS_PORTABLE 1
#endif
#if defined(EDGEC_EMULATE_DSP)
#include "edgec_acle_emul.h"
#define EDGEC_USE_DSP 1
#define EDGEC_ARM_ASM 0
#elif defined(__ARM_FEATURE_DSP) && !defined(EDGEC_KERNELS_PORTABLE)
#include <arm_acle.h>
#define EDGEC_USE_DSP 1
#if defined(__GNUC__)
#define EDGEC_ARM_ASM 1 /* GNU inline assembly for what ACLE lacks (SMMLAR, SXTB16 ror) */
#else
#define EDGEC_ARM_ASM 0
#endif
#else
#define EDGEC_USE_DSP 0
#define EDGEC_ARM_ASM 0
#endif

#if defined(__GNUC__)
#define EDGEC_FORCE_INLINE static inline __attribute__((always_inline))
#define EDGEC_NOINLINE __attribute__((noinline))
#else
#define EDGEC_FORCE_INLINE static inline
#define EDGEC_NOINLINE
#endif

/* The assembler directives that open a Thumb-2 function `name` (a string
 * literal) inside top-level __asm__: the kernels' hand-scheduled inner loops. */
#define EDGEC_ASM_FUNC(name)                                                                                           \
    ".syntax unified\n\t"                                                                                             \
    ".thumb\n\t"                                                                                                      \
    ".text\n\t"                                                                                                       \
    ".p2align 2\n\t"                                                                                                  \
    ".global " name "\n\t"                                                                                            \
    ".hidden " name "\n\t"                                                                                            \
    ".type " name ", %function\n\t"                                                                                   \
    ".thumb_func\n" name ":\n\t"

/* Fallback paths that DSP builds take for no MLPerf Tiny layer (slow
 * requantisation, pruned channels met at run time, 3x3 depthwise off the fast
 * path): compiled for size there (gcc's `cold`), for speed in portable builds,
 * where they are the main paths. (The generic depthwise loops are not cold:
 * the streaming wake-word model's 3x1..15x1 filters run on them.) */
#if defined(__GNUC__) && EDGEC_USE_DSP
#define EDGEC_DSP_COLD __attribute__((noinline, cold))
#else
#define EDGEC_DSP_COLD EDGEC_NOINLINE
#endif

#define EDGEC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define EDGEC_MIN(a, b) ((a) < (b) ? (a) : (b))

/* x * 2^shift for shift in [0, 31] with int32 wrap-around (TFLite's `x * (1 << s)`). */
EDGEC_FORCE_INLINE int32_t edgec_shl_wrap(int32_t x, int32_t shift)
{
    return (int32_t)((uint32_t)x << shift);
}

/*
 * gemmlowp SaturatingRoundingDoublingHighMul for b != INT32_MIN (quantized
 * multipliers are never negative, so the one saturating case cannot occur).
 * floor((a*b + 2^30) / 2^31) equals gemmlowp's truncating form for both signs;
 * it compiles to one SMLAL on Cortex-M.
 */
EDGEC_FORCE_INLINE int32_t edgec_doubling_high_mult(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
    return (int32_t)(ab >> 31);
}

/* Fully saturating form (a == b == INT32_MIN -> INT32_MAX), for the fixed-point math functions. */
EDGEC_FORCE_INLINE int32_t edgec_sat_doubling_high_mult(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return edgec_doubling_high_mult(a, b);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, ties away from zero; exponent in [0, 31]. */
EDGEC_FORCE_INLINE int32_t edgec_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    int32_t result = x >> exponent;
    int32_t threshold = mask >> 1;
    if (result < 0) {
        threshold++;
    }
    if (remainder > threshold) {
        result++;
    }
    return result;
}

/*
 * TFLite MultiplyByQuantizedMultiplier (TFLITE_SINGLE_ROUNDING=0, the default
 * build of TFLite and TFLite Micro): a rounding doubling high multiply, then a
 * second rounding shift. shift > 0 is a left shift.
 */
EDGEC_FORCE_INLINE int32_t edgec_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return edgec_rounding_divide_by_pot(edgec_doubling_high_mult(edgec_shl_wrap(x, left), multiplier), right);
}

/* The common tail: requantize, add the output zero point, clamp to the activation range. */
EDGEC_FORCE_INLINE int8_t edgec_requantize_clamp(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_offset,
                                                 int32_t act_min, int32_t act_max)
{
    int32_t y = edgec_requantize(acc, multiplier, shift) + out_offset;
    y = EDGEC_MAX(y, act_min);
    y = EDGEC_MIN(y, act_max);
    return (int8_t)y;
}

/*
 * Fast requantisation (DSP builds), bit-exact with edgec_requantize for the
 * common case: right shift e = -shift in [1, 23] and |acc| < 2^30.
 *
 * RoundingDivideByPOT(SRDHM(acc, m), e) + out_offset in three instructions:
 *   SRDHM(acc, m) = floor((acc * m + 2^30) / 2^31) = SMMLAR(2 acc, m) exactly
 *     while 2 acc fits in int32;
 *   RoundingDivideByPOT(s, e) = floor((s + 2^(e-1) - [s < 0]) / 2^e) (ties away
 *     from zero); s < 0 implies acc < 0 and acc < 0 implies s <= 0, and s = 0
 *     gives 0 either way, so [s < 0] may be taken as [acc < 0] = -(2 acc >> 31);
 *   adding out_offset * 2^e before the floor division adds out_offset after it.
 * So y = SMMLAR(2 acc, m, k + (2 acc >> 31)) >> e with the per-channel constant
 * k = out_offset * 2^e + 2^(e-1). The bounds keep every intermediate in int32
 * (|k| < 2^30 - 2^22); edgec_rq_fast_ok checks them once per call.
 */
#define EDGEC_RQ_MAX_ACC (1 << 30)

EDGEC_FORCE_INLINE int32_t edgec_smmlar(int32_t a, int32_t b, int32_t acc)
{
#if EDGEC_ARM_ASM
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    const uint64_t p = ((uint64_t)(uint32_t)acc << 32) + (uint64_t)((int64_t)a * (int64_t)b) + 0x80000000u;
    return (int32_t)(uint32_t)(p >> 32);
#endif
}

EDGEC_FORCE_INLINE int32_t edgec_rq_k(int32_t out_offset, int32_t e)
{
    return (int32_t)((uint32_t)out_offset << e) + (1 << (e - 1));
}

EDGEC_FORCE_INLINE int32_t edgec_rq_fast(int32_t acc, int32_t mult, int32_t k, int32_t e)
{
    const int32_t x2 = (int32_t)((uint32_t)acc << 1);
    return edgec_smmlar(x2, mult, k + (x2 >> 31)) >> e;
}

/*
 * Whether edgec_rq_fast applies to a whole layer: every shift in [-23, -1] and
 * |bias| + k_max * 128 * 255 < 2^30 (the largest |acc| an int8 layer can reach
 * with k_max products of int8 weights by (x + input_offset) in [-255, 255]).
 */
static inline int edgec_rq_fast_ok(const edgec_quant_params *quant, int32_t channels, const int32_t *bias,
                                   int32_t k_max)
{
    if (k_max < 0 || k_max > (EDGEC_RQ_MAX_ACC / 2) / (128 * 255)) {
        return 0;
    }
    const int32_t n = quant->per_channel ? channels : 1;
    for (int32_t c = 0; c < n; c++) {
        if (quant->shift[c] > -1 || quant->shift[c] < -23 || quant->multiplier[c] < 0) {
            return 0;
        }
    }
    if (bias != NULL) {
        const int32_t limit = EDGEC_RQ_MAX_ACC / 2;
        for (int32_t c = 0; c < channels; c++) {
            if (bias[c] >= limit || bias[c] <= -limit) {
                return 0;
            }
        }
    }
    return 1;
}

/* Clamp to [act_min, act_max]; SSAT alone when that is the whole int8 range. */
EDGEC_FORCE_INLINE int32_t edgec_clamp_s8(int32_t y, int32_t act_min, int32_t act_max, int full_range)
{
#if EDGEC_USE_DSP
    if (full_range) {
        return __ssat(y, 8);
    }
#else
    (void)full_range;
#endif
    y = EDGEC_MAX(y, act_min);
    return EDGEC_MIN(y, act_max);
}

/* Unaligned little-endian word loads (memcpy is one LDR on Cortex-M3 and up). */
EDGEC_FORCE_INLINE int32_t edgec_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

EDGEC_FORCE_INLINE int32_t edgec_read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

EDGEC_FORCE_INLINE void edgec_write_s16x2(int16_t *p, int32_t v)
{
    memcpy(p, &v, 4);
}

EDGEC_FORCE_INLINE void edgec_write_s8x4(int8_t *p, int32_t v)
{
    memcpy(p, &v, 4);
}

#if EDGEC_USE_DSP
/* Rotate right; gcc folds it into the ROR operand of SXTB16/SXTAB16. */
EDGEC_FORCE_INLINE uint32_t edgec_ror(uint32_t x, uint32_t n)
{
    return (x >> n) | (x << ((32u - n) & 31u));
}

/* SXTB16 / SXTAB16 of the word rotated right by 8 (bytes 1 and 3). One
 * instruction on the core; gcc does not fold the rotation into the operand by
 * itself, hence the inline assembly. */
#if EDGEC_ARM_ASM
EDGEC_FORCE_INLINE int32_t edgec_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

EDGEC_FORCE_INLINE int32_t edgec_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
#else
EDGEC_FORCE_INLINE int32_t edgec_sxtb16_ror8(int32_t x)
{
    return __sxtb16((int32_t)edgec_ror((uint32_t)x, 8));
}

EDGEC_FORCE_INLINE int32_t edgec_sxtab16_ror8(int32_t a, int32_t x)
{
    return __sxtab16(a, (int32_t)edgec_ror((uint32_t)x, 8));
}
#endif

/* PKHBT a, b, lsl #16 = (a[15:0], b[15:0]) and PKHTB b, a, asr #16 = (a[31:16], b[31:16]). */
#if EDGEC_ARM_ASM
EDGEC_FORCE_INLINE int32_t edgec_pkhbt16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

EDGEC_FORCE_INLINE int32_t edgec_pkhtb16(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
EDGEC_FORCE_INLINE int32_t edgec_pkhbt16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}

EDGEC_FORCE_INLINE int32_t edgec_pkhtb16(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a >> 16) | ((uint32_t)b & 0xFFFF0000u));
}
#endif

/*
 * Four int8 -> two int16 pairs, "unordered": *lo = (b0, b2), *hi = (b1, b3).
 * Weights and im2col columns are both read this way, so SMLAD pairs the right
 * elements and no repacking is needed.
 */
EDGEC_FORCE_INLINE void edgec_s8x4_to_s16x2x2(int32_t v, int32_t *lo, int32_t *hi)
{
    *lo = __sxtb16(v);
    *hi = edgec_sxtb16_ror8(v);
}

/* As above, adding a 16-bit offset (duplicated in both halves of offset2) to each element. */
EDGEC_FORCE_INLINE void edgec_s8x4_to_s16x2x2_offset(int32_t v, int32_t offset2, int32_t *lo, int32_t *hi)
{
    *lo = __sxtab16(offset2, v);
    *hi = edgec_sxtab16_ror8(offset2, v);
}

EDGEC_FORCE_INLINE int32_t edgec_dup_s16(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16));
}
#endif /* EDGEC_USE_DSP */

/*
 * Output stage of conv / depthwise / fully-connected layers, prepared once per
 * call: fast says edgec_rq_fast applies to every channel, full_range that the
 * activation range is all of int8 (SSAT alone clamps).
 */
typedef struct {
    const int32_t *mult;
    const int32_t *shift;
    int32_t qstep; /* 1 per channel, 0 per tensor */
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
    int32_t fast;
    int32_t full_range;
    const uint32_t *ch_class; /* 2 bits per channel (EDGEC_CH_*) or NULL; see edgec_nn_dead_prepare */
} edgec_nn_rq;

static inline void edgec_nn_rq_init(edgec_nn_rq *rq, const edgec_quant_params *quant, int32_t channels,
                                    const int32_t *bias, int32_t k_max, int32_t out_offset, int32_t act_min,
                                    int32_t act_max)
{
    rq->mult = quant->multiplier;
    rq->shift = quant->shift;
    rq->qstep = quant->per_channel ? 1 : 0;
    rq->out_offset = out_offset;
    rq->act_min = act_min;
    rq->act_max = act_max;
    rq->fast = edgec_rq_fast_ok(quant, channels, bias, k_max) && out_offset >= -128 && out_offset <= 127;
    rq->full_range = act_min <= -128 && act_max >= 127;
    rq->ch_class = NULL;
}

/* Requantize and clamp one accumulator of channel ch (either path). */
EDGEC_FORCE_INLINE int8_t edgec_nn_rq_one(const edgec_nn_rq *rq, int32_t ch, int32_t acc)
{
    const int32_t m = rq->mult[ch * rq->qstep];
    const int32_t s = rq->shift[ch * rq->qstep];
    if (rq->fast) {
        const int32_t e = -s;
        return (int8_t)edgec_clamp_s8(edgec_rq_fast(acc, m, edgec_rq_k(rq->out_offset, e), e), rq->act_min,
                                      rq->act_max, rq->full_range);
    }
    return edgec_requantize_clamp(acc, m, s, rq->out_offset, rq->act_min, rq->act_max);
}

/*
 * Shared matrix kernels of the DSP build (edgec_nn_mat_mult_s8.c).
 *
 * im2col layout ("s16x2 pairs"): two columns of len int16 elements (input
 * offset added) interleaved by groups of four: for group g, words
 * [4g] = col0 (x0, x2), [4g+1] = col0 (x1, x3), [4g+2] = col1 (x0, x2),
 * [4g+3] = col1 (x1, x3), the order SXTB16 / SXTB16 ror 8 split a weight
 * word into. A last partial group is zero-padded. Two columns take exactly
 * 4 * align4(len) bytes; one LDM fetches a group of both columns.
 */
#define EDGEC_IM2COL_WORDS(len) ((((len) + 3) & ~3))

#if EDGEC_USE_DSP
/* Widen n4 groups of four int8 (+ offset, duplicated in both halves of offset2)
 * into one column of the interleaved layout, from its word dst on; returns the
 * word after the last group written. */
EDGEC_FORCE_INLINE int32_t *edgec_nn_widen_groups(const int8_t *src, int32_t *dst, int32_t n4, int32_t offset2)
{
    while (n4-- > 0) {
        const int32_t v = edgec_read_s8x4(src);
        src += 4;
        dst[0] = __sxtab16(offset2, v);
        dst[1] = edgec_sxtab16_ror8(offset2, v);
        dst += 4;
    }
    return dst;
}
#endif

/* Convert len int8 (+ offset) into column slot `slot` (0 or 1) of `cols`. */
void edgec_nn_im2col_s8_to_s16x2(const int8_t *src, int32_t *cols, int32_t slot, int32_t len, int32_t offset);

/*
 * `out_ch` weight rows of `col_len` int8 (TFLite layout) times the two columns
 * in `cols`: out_ch outputs for column 0 at out0 and for column 1 at out1
 * (out1 == out0 when both columns are the same pixel). bias and rq are indexed
 * from output channel 0.
 */
void edgec_nn_gemm_s8_s16(const int8_t *weights, const int32_t *cols, int32_t out_ch, int32_t col_len,
                          const int32_t *bias, const edgec_nn_rq *rq, int8_t *out0, int8_t *out1);

/*
 * Dead channels. Pruned models (the MLPerf Tiny VWW MobileNet has 109 of 128
 * such channels in some layers) have output channels whose weights are all
 * zero: their output is a constant, requant(bias), whatever the input, and
 * their quantisation is often extreme (zero multiplier, shift -31, bias 2^30),
 * which keeps the layer off the fast requantisation. When a layer is not all
 * fast, edgec_nn_dead_prepare classifies its channels (2 bits each, in `bits`,
 * EDGEC_NN_MAX_CLASSIFIED channels at most): EDGEC_CH_FAST (fast-eligible),
 * EDGEC_CH_DEAD (zero weights, not fast-eligible) or EDGEC_CH_SLOW. The GEMM
 * then skips pairs of dead channels, runs a dead channel paired with a fast one
 * on neutral parameters, and edgec_nn_dead_fill writes every dead channel's
 * constant into all output pixels at the end. Bit-exact: those are exactly the
 * bytes the full computation gives.
 */
#define EDGEC_CH_FAST 0u
#define EDGEC_CH_DEAD 1u
#define EDGEC_CH_SLOW 2u
#define EDGEC_NN_MAX_CLASSIFIED 256

/* Returns 1 (and sets rq->ch_class = bits) when a classification is in use. */
int32_t edgec_nn_dead_prepare(edgec_nn_rq *rq, const int8_t *weights, const int32_t *bias, int32_t out_ch,
                              int32_t col_len, uint32_t bits[EDGEC_NN_MAX_CLASSIFIED / 16]);

/* Write the constant output of every dead channel into n_pixels pixels of out_ch channels. */
void edgec_nn_dead_fill(const edgec_nn_rq *rq, const int32_t *bias, int32_t out_ch, int8_t *output,
                        int32_t n_pixels);

/* A convolution call as the DSP paths see it (one struct keeps argument lists
 * and frames short: the stack budget is 512 bytes per kernel call). */
typedef struct {
    const edgec_conv_params *params;
    const edgec_dims *input_dims;
    const int8_t *input;
    const edgec_dims *filter_dims;
    const int8_t *filter;
    const int32_t *bias;
    const edgec_dims *output_dims;
    int8_t *output;
    void *buffer;
    edgec_nn_rq rq;
    int32_t range[4]; /* output rows [0], [1]) x columns [2], [3]) of the interior path */
    const int16_t *out_map; /* pruned pointwise layers: output channel of each filter row (NULL: the same) */
} edgec_nn_conv;

/*
 * The interior output pixels c->range of a convolution (window inside the
 * image) by the weight-stationary scheme: groups 1, dilation 1, even output
 * channels, every channel fast, activation range all of int8 (checked by the
 * caller). Scratch: 4 * kh*kw*kc bytes at c->buffer when kw*kc % 4 == 0;
 * otherwise kw*kc <= EDGEC_WS_MAX_ROW, kh * align4(kw*kc) <= EDGEC_WS_STACK_WORDS,
 * no window of the range may touch the last input row (whole-word reads), and
 * the last EDGEC_WS_TAIL_BYTES of the output must lie outside the range (they
 * hold the padded weights until the border pixels are written).
 */
#define EDGEC_WS_MAX_ROW 16
#define EDGEC_WS_STACK_WORDS 36
#define EDGEC_WS_TAIL_BYTES (4 * EDGEC_WS_STACK_WORDS + 4)
void edgec_nn_conv_interior_s8(const edgec_nn_conv *c);

/* The DSP 1x1 convolution (any stride, no padding, no groups; arguments
 * checked by the caller), shared by edgec_convolve_1x1_s8 and
 * edgec_convolve_s8 (both tail-call it). buffer: 4 * align4(input_dims->c) bytes. */
edgec_status edgec_nn_conv_1x1_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                                  const edgec_dims *input_dims, const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, const edgec_dims *output_dims, int8_t *output);

/* A pruned stride-1 pointwise layer (edgec_convolve_1x1_pruned_s8, arguments
 * checked by the caller) on DSP builds: the live channels by the
 * weight-stationary path when it can take the layer, else by
 * edgec_nn_conv_1x1_direct; then the constant channels. */
edgec_status edgec_nn_pw_pruned_s8(void *buffer, const edgec_conv_params *params, const edgec_quant_params *quant,
                                   const edgec_channel_map *map, const edgec_dims *input_dims, const int8_t *input,
                                   const edgec_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                   const edgec_dims *output_dims, int8_t *output);

/* 1x1 convolution by direct loops (edgec_convolve_1x1_s8.c): filter row oc
 * goes to output channel out_ch[oc] (oc when out_ch is NULL). */
void edgec_nn_conv_1x1_direct(const edgec_conv_params *params, const edgec_quant_params *quant,
                              const edgec_dims *input_dims, const int8_t *input, int32_t rows,
                              const int16_t *out_ch, const int8_t *filter, const int32_t *bias,
                              const edgec_dims *output_dims, int8_t *output);

/* The constant channels of a pruned layer, into every pixel of a dense NHWC output. */
void edgec_nn_fill_channels(const edgec_channel_map *map, const edgec_dims *output_dims, int8_t *output);

/*
 * Portable dot products of one int8 row with (x + input_offset), used by the
 * non-DSP conv and fully-connected paths.
 */
EDGEC_FORCE_INLINE int32_t edgec_dot_s8_offset(const int8_t *x, const int8_t *w, int32_t len, int32_t input_offset)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < len; i++) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + input_offset);
    }
    return acc;
}

#endif /* EDGEC_NN_SUPPORT_H */
