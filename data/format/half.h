/* IEEE 754 binary16 <-> binary32 conversions for float16 datasets (HDF5 1.10 has no
 * native half type, and its own soft conversion is slow, so the reader reads the raw
 * 16-bit values and converts them here). No MPI, no HDF5. */
#ifndef E2E_DATA_HALF_H
#define E2E_DATA_HALF_H

#include <stddef.h>
#include <stdint.h>

/* exact: every half value (subnormals, infinities, NaNs) has a float32 twin */
float half_to_float(uint16_t h);
/* round to nearest, ties to even; overflow gives infinity; NaN stays NaN */
uint16_t float_to_half(float f);
void half_to_float_n(const uint16_t *in, float *out, size_t n);
void float_to_half_n(const float *in, uint16_t *out, size_t n);
/* how many of the n values are NaN or infinite (exponent bits all ones) */
long long half_count_nonfinite(const uint16_t *in, size_t n);

#endif
