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
 * The one DSP switch. EDGEC_EMULATE_DSP compiles the DSP code path on any
 * host with C versions of the ACLE intrinsics, so tests can check that it
 * gives the same bytes as the portable path. EDGEC_NO_DSP forces the portable
 * path on a DSP core (for comparisons of size and speed).
 */
#if defined(EDGEC_EMULATE_DSP)
#include "edgec_acle_emul.h"
#define EDGEC_USE_DSP 1
#elif defined(__ARM_FEATURE_DSP) && !defined(EDGEC_NO_DSP)
#include <arm_acle.h>
#define EDGEC_USE_DSP 1
#else
#define EDGEC_USE_DSP 0
#endif

#if defined(__GNUC__)
#define EDGEC_FORCE_INLINE static inline __attribute__((always_inline))
#define EDGEC_NOINLINE __attribute__((noinline))
#else
#define EDGEC_FORCE_INLINE static inline
#define EDGEC_NOINLINE
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
#if defined(__GNUC__) && !defined(EDGEC_EMULATE_DSP)
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
 * Shared matrix kernels of the DSP build (edgec_nn_mat_mult_s8.c).
 *
 * im2col layout ("s16x2 pairs"): two columns of len int16 elements (input
 * offset added) interleaved by groups of four: for group g, words
 * [4g] = col0 (x0, x2), [4g+1] = col0 (x1, x3), [4g+2] = col1 (x0, x2),
 * [4g+3] = col1 (x1, x3); the len % 4 leftover elements of a column follow as
 * packed pairs (x0, x1), (x2, 0) in words [4G], [4G+1] (col0) and [4G+2],
 * [4G+3] (col1). Two columns take exactly 4 * align4(len) bytes. One LDM
 * fetches a group of both columns.
 */
#define EDGEC_IM2COL_WORDS(len) ((((len) + 3) & ~3))

/* Convert len int8 (+ offset) into column slot `slot` (0 or 1) of `cols`. */
void edgec_nn_im2col_s8_to_s16x2(const int8_t *src, int32_t *cols, int32_t slot, int32_t len, int32_t offset);

/*
 * `out_ch` weight rows of `col_len` int8 (TFLite layout) times the two columns
 * in `cols`. Writes out_ch outputs for column 0 at out0 and for column 1 at
 * out1; quant/bias are indexed from output channel 0.
 */
void edgec_nn_mat_mult_kernel_s8_s16(const int8_t *weights, const int32_t *cols, int32_t out_ch, int32_t col_len,
                                     const edgec_quant_params *quant, const int32_t *bias, int32_t out_offset,
                                     int32_t act_min, int32_t act_max, int8_t *out0, int8_t *out1);

/* Column 0 only (the odd last output pixel). */
void edgec_nn_mat_mult_kernel_s8_s16_1col(const int8_t *weights, const int32_t *cols, int32_t out_ch, int32_t col_len,
                                          const edgec_quant_params *quant, const int32_t *bias, int32_t out_offset,
                                          int32_t act_min, int32_t act_max, int8_t *out0);

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
