/* NumPy .npy files (format 1.0-3.0): write 1-D f32/f64 vectors, read a 1-D (or 1xN) float
 * vector with every header field checked. */
#ifndef QK_NPY_H
#define QK_NPY_H
#include <stddef.h>

/* Writes n values as a little-endian 1-D array ('<f4' when f32, else '<f8' from data64).
 * Returns 0, or -1 with errno set. */
int qk_npy_write_f32(const char *path, const float *data, size_t n);
int qk_npy_write_f64(const char *path, const double *data, size_t n);

/* An n-dimensional C-order array (nd <= 3) of type 'f' (f32), 'd' (f64) or 'i' (int32). */
int qk_npy_write_shaped(const char *path, char type, const void *data, const size_t *shape,
                        size_t nd);

/* The longest vector read: bench's widest matrix has 2^20 columns. A longer one is refused
 * before its values are read (a sparse file could otherwise claim gigabytes). */
enum { QK_NPY_MAX_VALUES = 1 << 20, QK_NPY_MAX_ROWS = 64 };

/* Reads a '<f4' or '<f8' C-order array of shape (n,) or (1, n), n <= QK_NPY_MAX_VALUES, into a
 * new f32 array (*out, freed by the caller). On failure returns -1 and writes one line naming
 * the problem to err. */
int qk_npy_read_f32(const char *path, float **out, size_t *n, char *err, size_t err_size);
/* As qk_npy_read_f32, also of shape (rows, n), rows <= QK_NPY_MAX_ROWS (one vector per token):
 * *rows is 1 for (n,). */
int qk_npy_read_f32_rows(const char *path, float **out, size_t *rows, size_t *n, char *err,
                         size_t err_size);

#endif
