#include "config.h"

#include "engine/molmo.h"

#include "tests/jb-test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

Test(dtype, safetensors_tags_parse) {
    enum molmo_dtype dt;
    cr_assert_eq(molmo_dtype_parse("F32", &dt), 0);
    cr_assert_eq(dt, MOLMO_DTYPE_F32);
    cr_assert_eq(molmo_dtype_parse("BF16", &dt), 0);
    cr_assert_eq(dt, MOLMO_DTYPE_BF16);
    cr_assert_eq(molmo_dtype_parse("F16", &dt), 0);
    cr_assert_eq(molmo_dtype_size(dt), 2);
    cr_assert_eq(molmo_dtype_parse("F64", &dt), -1);
    cr_assert_eq(molmo_dtype_parse("bf16", &dt), -1);
    cr_assert_str_eq(molmo_dtype_name(MOLMO_DTYPE_BF16), "BF16");
}

/* bfloat16 is the top half of a float32: 0x3F80 = 1.0, 0xC040 = -3.0, 0x3E20 = 0.15625,
 * 0x7F80 = +inf (IEEE 754 bit layouts, worked by hand). Stored little-endian. */
Test(dtype, bf16_to_f32_is_a_shift) {
    const unsigned char raw[] = {0x80, 0x3F, 0x40, 0xC0, 0x20, 0x3E, 0x80, 0x7F};
    float f[4];
    molmo_convert_to_f32(f, raw, MOLMO_DTYPE_BF16, 4);
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[1], -3.0f);
    cr_assert_eq(f[2], 0.15625f);
    cr_assert(isinf(f[3]) && f[3] > 0);
}

/* binary16: 0x3C00 = 1.0, 0xC500 = -5.0, 0x0001 = 2^-24 (smallest subnormal), 0x7BFF = 65504
 * (largest normal), 0xFC00 = -inf, 0x7E00 = NaN. */
Test(dtype, f16_to_f32_covers_subnormals_and_specials) {
    const uint16_t h[] = {0x3C00, 0xC500, 0x0001, 0x7BFF, 0xFC00, 0x7E00, 0x8000};
    unsigned char raw[sizeof h];
    for (size_t i = 0; i < 7; i++) {
        raw[2 * i] = (unsigned char)(h[i] & 0xff);
        raw[2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    float f[7];
    molmo_convert_to_f32(f, raw, MOLMO_DTYPE_F16, 7);
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[1], -5.0f);
    cr_assert_eq(f[2], 0x1p-24f);
    cr_assert_eq(f[3], 65504.0f);
    cr_assert(isinf(f[4]) && f[4] < 0);
    cr_assert(isnan(f[5]));
    cr_assert(f[6] == 0.0f && signbit(f[6]));
}

/* Round to nearest even: 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3F80) and the next
 * value 1 + 2^-7 (0x3F81); the even one is 0x3F80. 1 + 3*2^-8 is halfway between 0x3F81 and
 * 0x3F82 and goes to 0x3F82. */
Test(dtype, f32_to_bf16_rounds_to_nearest_even) {
    cr_assert_eq(molmo_f32_to_bf16(1.0f), 0x3F80);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);
    cr_assert_eq(molmo_f32_to_bf16(1.0f + 0x1p-7f + 0x1p-9f), 0x3F81);
    cr_assert_eq(molmo_f32_to_bf16(-2.0f), 0xC000);
    uint16_t n = molmo_f32_to_bf16(NAN);
    cr_assert_eq(n & 0x7F80, 0x7F80);
    cr_assert_neq(n & 0x7F, 0);
}
