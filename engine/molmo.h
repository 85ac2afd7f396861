/* molmo.h: the Molmo (0924 family) inference engine: checkpoints, tokenizer, image
 * preprocessing, vision transformer, connector, language model and greedy generation.
 * The engine knows nothing about energy: it reports phase boundaries through a callback.
 * Specification: shared/design/molmo.md.
 *
 *     float f[4];
 *     molmo_convert_to_f32(f, raw, MOLMO_DTYPE_BF16, 4);   // stored dtype -> working f32
 *     enum molmo_dtype dt;
 *     molmo_dtype_parse("BF16", &dt);                      // safetensors dtype tag
 */
#ifndef MOLMO_H
#define MOLMO_H

#include <stddef.h>
#include <stdint.h>

/* Element types a checkpoint may store (safetensors tags F32, BF16, F16). */
enum molmo_dtype {
    MOLMO_DTYPE_F32,
    MOLMO_DTYPE_BF16,
    MOLMO_DTYPE_F16,
};

/* Parses a safetensors dtype tag; returns 0, or -1 for a tag the engine does not read. */
int molmo_dtype_parse(const char *tag, enum molmo_dtype *out);

/* The tag of a dtype ("F32", "BF16", "F16") and its size in bytes. */
const char *molmo_dtype_name(enum molmo_dtype dt);
size_t molmo_dtype_size(enum molmo_dtype dt);

/* Converts n little-endian elements of dtype dt at src to float32 at dst. BF16 is exact
 * (f32 bits = bf16 bits << 16); F16 is exact too, subnormals, infinities and NaN included. */
void molmo_convert_to_f32(float *dst, const void *src, enum molmo_dtype dt, size_t n);

/* Rounds float32 to bfloat16 bits, to nearest even (NaN stays NaN). */
uint16_t molmo_f32_to_bf16(float x);

#endif /* MOLMO_H */
