/* NumPy .npy files (format 1.0-3.0): write 1-D f32/f64 vectors, read a 1-D (or 1xN) float
 * vector with every header field checked. */
#ifndef QK_NPY_H
#define QK_NPY_H
#include <stddef.h>

/* Writes n values as a little-endian 1-D array ('<f4' when f32, else '<f8' from data64).
 * Returns 0, or -1 with errno set. */
int qk_npy_write_f32(const char *path, const float *data, size_t n);
int qk_npy_write_f64(const char *path, const double *data, size_t n);

/* The longest vector read: bench's widest matrix has 2^20 columns. A longer one is refused
 * before its values are read (a sparse file could otherwise claim gigabytes). */
enum { QK_NPY_MAX_VALUES = 1 << 20 };

/* Reads a '<f4' or '<f8' C-order array of shape (n,) or (1, n), n <= QK_NPY_MAX_VALUES, into a
 * new f32 array (*out, freed by the caller). On failure returns -1 and writes one line naming
 * the problem to err. */
int qk_npy_read_f32(const char *path, float **out, size_t *n, char *err, size_t err_size);

#endif
