#include "config.h"

#include "engine/molmo.h"

#include "engine/kernels-impl.h"

#include <string.h>

static const struct {
    const char *tag;
    size_t size;
} dtype_info[] = {
    [MOLMO_DTYPE_F32] = {"F32", 4},
    [MOLMO_DTYPE_BF16] = {"BF16", 2},
    [MOLMO_DTYPE_F16] = {"F16", 2},
    [MOLMO_DTYPE_Q8_0] = {"Q8_0", 0}, /* a block type: see molmo_dtype_bytes */
};

int molmo_dtype_parse(const char *tag, enum molmo_dtype *out) {
    for (size_t i = 0; i < sizeof dtype_info / sizeof dtype_info[0]; i++) {
        if (strcmp(tag, dtype_info[i].tag) == 0) {
            *out = (enum molmo_dtype)i;
            return 0;
        }
    }
    return -1;
}

const char *molmo_dtype_name(enum molmo_dtype dt) { return dtype_info[dt].tag; }

size_t molmo_dtype_size(enum molmo_dtype dt) { return dtype_info[dt].size; }

size_t molmo_dtype_bytes(enum molmo_dtype dt, size_t n) {
    if (dt == MOLMO_DTYPE_Q8_0) return n / MOLMO_Q8_0_BLOCK * sizeof(struct molmo_q8_0_block);
    return n * dtype_info[dt].size;
}

static float bits_to_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* IEEE 754 binary16 -> binary32, exact for every input. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13)); /* inf, NaN */
    if (exp == 0) {
        if (man == 0) return bits_to_f32(sign);
        /* subnormal: value = man * 2^-24, exactly representable in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

void molmo_convert_to_f32(float *dst, const void *src, enum molmo_dtype dt, size_t n) {
    const unsigned char *s = src;
    switch (dt) {
    case MOLMO_DTYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case MOLMO_DTYPE_BF16: {
        /* Blocks of 64 through fixed-size buffers: GCC vectorizes the shift at -O2, 5x the
         * element-by-element loop, and decode streams every BF16 weight through here. */
        uint16_t h[64];
        uint32_t w[64];
        size_t i = 0;
        for (; i + 64 <= n; i += 64) {
            memcpy(h, s + 2 * i, sizeof h);  /* host order = little-endian, as F32 assumes */
            for (int k = 0; k < 64; k++) w[k] = (uint32_t)h[k] << 16;
            memcpy(dst + i, w, sizeof w);
        }
        for (; i < n; i++) dst[i] = bits_to_f32((uint32_t)(s[2 * i] | s[2 * i + 1] << 8) << 16);
        break;
    }
    case MOLMO_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        break;
    case MOLMO_DTYPE_Q8_0: {
        /* blocks are 2-byte aligned at best: copy each out before reading its fields */
        struct molmo_q8_0_block b;
        for (size_t k = 0; k < n / MOLMO_Q8_0_BLOCK; k++) {
            memcpy(&b, s + k * sizeof b, sizeof b);
            float d = f16_to_f32(b.d);
            float *o = dst + k * MOLMO_Q8_0_BLOCK;
            for (int i = 0; i < MOLMO_Q8_0_BLOCK; i++) o[i] = d * (float)b.q[i];
        }
        break;
    }
    }
}

uint16_t molmo_f32_to_bf16(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u); /* quiet NaN */
    uint32_t round = 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)((b + round) >> 16);
}
