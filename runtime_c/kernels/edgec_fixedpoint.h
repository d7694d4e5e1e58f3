/*
 * gemmlowp's fixed-point math (fixedpoint/fixedpoint.h), scalar int32 only:
 * what TFLite Micro's int8 Softmax, Logistic and Tanh are built from. A value
 * "Qk" has k integer bits and 31 - k fractional bits. Same operations in the
 * same order as gemmlowp, so results are identical bit for bit.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef EDGEC_FIXEDPOINT_H
#define EDGEC_FIXEDPOINT_H

#include "edgec_nn_support.h"

/* int32 add/sub with wrap-around, as gemmlowp's Add/Sub on int32. */
EDGEC_FORCE_INLINE int32_t edgec_fp_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

EDGEC_FORCE_INLINE int32_t edgec_fp_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

EDGEC_FORCE_INLINE int32_t edgec_fp_mul(int32_t a, int32_t b)
{
    return edgec_sat_doubling_high_mult(a, b);
}

/* SaturatingRoundingMultiplyByPOT<exponent> for exponent in [1, 30]. */
EDGEC_FORCE_INLINE int32_t edgec_fp_sat_shl(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return edgec_shl_wrap(x, exponent);
}

/* RoundingHalfSum on int32 (64-bit sum, C truncating division). */
EDGEC_FORCE_INLINE int32_t edgec_fp_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a in [-1/4, 0), Q0 in and out. */
static inline int32_t edgec_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;    /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883; /* 1/3 */
    const int32_t x = edgec_fp_add(a, 1 << 28);  /* a + 1/8 */
    const int32_t x2 = edgec_fp_mul(x, x);
    const int32_t x3 = edgec_fp_mul(x2, x);
    const int32_t x4 = edgec_fp_mul(x2, x2);
    const int32_t x4_over_4 = edgec_rounding_divide_by_pot(x4, 2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 = edgec_rounding_divide_by_pot(
        edgec_fp_add(edgec_fp_mul(edgec_fp_add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return edgec_fp_add(constant_term,
                        edgec_fp_mul(constant_term, edgec_fp_add(x, x4_over_24_plus_x3_over_6_plus_x2_over_2)));
}

/* exp(a) for a <= 0 given in Q(integer_bits) (integer_bits in [1, 5]); result Q0. */
static inline int32_t edgec_fp_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = 1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = edgec_fp_sub(a & mask, one_quarter);
    int32_t result = edgec_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(
        edgec_fp_sat_shl(a_mod_quarter_minus_one_quarter, integer_bits));
    const int32_t remainder = edgec_fp_sub(a_mod_quarter_minus_one_quarter, a);

    /* exp(-2^k) for k = -2..4, applied for each set bit of the remainder. */
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int32_t k = -2; k <= 4; k++) {
        if (integer_bits > k) {
            const int32_t bit = fractional_bits + k;
            if (remainder & (int32_t)(1u << bit)) {
                result = edgec_fp_mul(result, multipliers[k + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -(1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* The Newton-Raphson reciprocal of gemmlowp: returns x in Q2 ~ 1 / half_denominator. */
static inline int32_t edgec_fp_newton_reciprocal_q2(int32_t half_denominator)
{
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    int32_t x = edgec_fp_add(constant_48_over_17, edgec_fp_mul(half_denominator, constant_neg_32_over_17));
    for (int32_t i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = edgec_fp_mul(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = edgec_fp_sub(1 << 29, half_denominator_times_x);
        x = edgec_fp_add(x, edgec_fp_sat_shl(edgec_fp_mul(x, one_minus_half_denominator_times_x), 2));
    }
    return x;
}

/* 1 / (1 + a) for a in [0, 1), Q0 in and out. */
static inline int32_t edgec_fp_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = edgec_fp_rounding_half_sum(a, INT32_MAX);
    return edgec_fp_sat_shl(edgec_fp_newton_reciprocal_q2(half_denominator), 1);
}

/* (1 - a) / (1 + a) for a in [0, 1), Q0 in and out. */
static inline int32_t edgec_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = edgec_fp_rounding_half_sum(a, INT32_MAX);
    return edgec_fp_sat_shl(edgec_fp_sub(edgec_fp_newton_reciprocal_q2(half_denominator), 1 << 29), 2);
}

#endif /* EDGEC_FIXEDPOINT_H */
