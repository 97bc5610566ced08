#define _POSIX_C_SOURCE 200809L
#include "npy.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_npy(const char *path, const char *descr, const void *data, size_t n, size_t elem) {
    char header[128];
    int len = snprintf(header, sizeof header,
                       "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }", descr, n);
    /* magic(6) + version(2) + length(2) + header, padded with spaces to a multiple of 64,
     * ending in '\n' */
    size_t total = 10 + (size_t)len + 1, padded = (total + 63) / 64 * 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    pre[8] = (unsigned char)((padded - 10) & 0xff), pre[9] = (unsigned char)((padded - 10) >> 8);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)len, f) == (size_t)len;
    for (size_t i = total; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, elem, n, f) == n;
    int saved = errno;
    if (fclose(f) && ok) return -1;
    if (!ok) errno = saved ? saved : EIO;
    return ok ? 0 : -1;
}

int qk_npy_write_f32(const char *path, const float *data, size_t n) {
    return write_npy(path, "<f4", data, n, sizeof *data);
}
int qk_npy_write_f64(const char *path, const double *data, size_t n) {
    return write_npy(path, "<f8", data, n, sizeof *data);
}

static int fail(char *err, size_t size, const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(err, size, "%s: ", path);
    if (k >= 0 && (size_t)k < size) vsnprintf(err + k, size - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

/* The value text of 'key' in a Python dict literal, or NULL. */
static const char *dict_value(const char *h, const char *key) {
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *p = strstr(h, quoted);
    if (!p) return NULL;
    p += strlen(quoted);
    while (*p == ' ')
        p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

int qk_npy_read_f32(const char *path, float **out, size_t *n_out, char *err, size_t es) {
    *out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, es, path, "cannot open: %s", strerror(errno));
    int rc = -1;
    char *header = NULL;
    unsigned char pre[12];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6)) {
        fail(err, es, path, "not a .npy file (bad magic)");
        goto done;
    }
    size_t hlen;
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) goto truncated;
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 8, 1, 4, f) != 4) goto truncated;
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        fail(err, es, path, "unsupported .npy version %d.%d (1.0, 2.0, 3.0 are read)", pre[6],
             pre[7]);
        goto done;
    }
    if (hlen > 1 << 16) {
        fail(err, es, path, "header length %zu is implausible (over 64 KiB)", hlen);
        goto done;
    }
    header = malloc(hlen + 1);
    if (!header) {
        fail(err, es, path, "out of memory");
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen) goto truncated;
    header[hlen] = 0;
    if (memchr(header, 0, hlen)) {
        fail(err, es, path, "header contains a NUL byte");
        goto done;
    }
    const char *descr = dict_value(header, "descr"), *order = dict_value(header, "fortran_order"),
               *shape = dict_value(header, "shape");
    if (!descr || !order || !shape) {
        fail(err, es, path, "header lacks descr, fortran_order or shape");
        goto done;
    }
    size_t elem;
    if (!strncmp(descr, "'<f4'", 5))
        elem = 4;
    else if (!strncmp(descr, "'<f8'", 5))
        elem = 8;
    else {
        fail(err, es, path, "dtype %.8s is not float32 or float64 little-endian ('<f4', '<f8')",
             descr);
        goto done;
    }
    if (strncmp(order, "False", 5)) {
        fail(err, es, path, "fortran_order arrays are not read (save with C order)");
        goto done;
    }
    /* shape: (n,) or (1, n) */
    if (*shape != '(') goto bad_shape;
    size_t dims[3], nd = 0;
    const char *p = shape + 1;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || nd == 3) goto bad_shape;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v > SIZE_MAX / 8) goto bad_shape;
        dims[nd++] = (size_t)v;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p != ')')
            goto bad_shape;
    }
    size_t n;
    if (nd == 1)
        n = dims[0];
    else if (nd == 2 && dims[0] == 1)
        n = dims[1];
    else {
        fail(err, es, path, "shape must be (n,) or (1, n): one activation vector");
        goto done;
    }
    if (n == 0) {
        fail(err, es, path, "the array is empty");
        goto done;
    }
    long here = ftell(f);
    if (here < 0 || fseek(f, 0, SEEK_END)) {
        fail(err, es, path, "cannot seek: %s", strerror(errno));
        goto done;
    }
    long size = ftell(f);
    if (size < 0 || (unsigned long)(size - here) != n * elem) {
        fail(err, es, path, "holds %ld data bytes, the header promises %zu", size - here, n * elem);
        goto done;
    }
    fseek(f, here, SEEK_SET);
    float *x = malloc(n * sizeof *x);
    void *raw = malloc(n * elem);
    if (!x || !raw || fread(raw, elem, n, f) != n) {
        free(x), free(raw);
        fail(err, es, path, "cannot read %zu values", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = elem == 4 ? ((float *)raw)[i] : (float)((double *)raw)[i];
        if (!isfinite(x[i])) {
            free(x), free(raw);
            fail(err, es, path, "value %zu is not finite as a float32", i);
            goto done;
        }
    }
    free(raw);
    *out = x;
    *n_out = n;
    rc = 0;
    goto done;
truncated:
    fail(err, es, path, "truncated .npy header");
    goto done;
bad_shape:
    fail(err, es, path, "cannot parse the shape in the header");
done:
    free(header);
    fclose(f);
    return rc;
}
