#define _POSIX_C_SOURCE 200809L
#include "npy.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_npy(const char *path, const char *descr, const void *data, const size_t *shape,
                     size_t nd, size_t elem) {
    char dims[96] = "";
    size_t n = 1, k = 0;
    for (size_t i = 0; i < nd && i < 3; i++) {
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%zu,%s", shape[i], i + 1 < nd ? " " : "");
        n *= shape[i];
    }
    if (nd > 1) dims[k - 1] = 0; /* (2, 3) but (5,) */
    char header[192];
    int len = snprintf(header, sizeof header,
                       "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
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
    return write_npy(path, "<f4", data, &n, 1, sizeof *data);
}
int qk_npy_write_f64(const char *path, const double *data, size_t n) {
    return write_npy(path, "<f8", data, &n, 1, sizeof *data);
}
int qk_npy_write_shaped(const char *path, char type, const void *data, const size_t *shape,
                        size_t nd) {
    const char *descr = type == 'f' ? "<f4" : type == 'd' ? "<f8" : "<i4";
    return write_npy(path, descr, data, shape, nd, type == 'd' ? 8 : 4);
}

static int fail(char *err, size_t size, const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(err, size, "%s: ", path);
    if (k >= 0 && (size_t)k < size) vsnprintf(err + k, size - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

/* Text from the file as it may appear in a one-line message: at most 40 bytes, control bytes
 * and non-ASCII as \xNN. */
static const char *shown(const char *s, size_t n, char out[164]) {
    size_t k = 0;
    for (size_t i = 0; i < n && i < 40; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[k++] = (char)ch;
        else
            k += (size_t)snprintf(out + k, 5, "\\x%02x", ch);
    }
    out[k] = 0;
    return out;
}

/* The header, parsed as the Python dict literal it is (numpy reads it with literal_eval):
 * exactly the keys descr (a string), fortran_order (True or False) and shape (a tuple of
 * integers), quoted with ' or ", separated by commas, nothing after the closing brace but
 * spaces and the final newline. */
typedef struct {
    const char *p;
    const char *descr;
    size_t descr_len;
    int fortran_order; /* -1: absent */
    size_t dims[3], nd;
    int has_shape;
    char problem[200];
} npy_header;

static void skip_space(npy_header *h) {
    while (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')
        h->p++;
}

/* A quoted string without escapes: its text and length, or -1. */
static int quoted(npy_header *h, const char **text, size_t *len) {
    char q = *h->p;
    if (q != '\'' && q != '"') return -1;
    const char *end = strchr(h->p + 1, q);
    if (!end) return -1;
    if (memchr(h->p + 1, '\\', (size_t)(end - h->p - 1))) return -1;
    *text = h->p + 1, *len = (size_t)(end - h->p - 1);
    h->p = end + 1;
    return 0;
}

/* (n,) (1, n) () ... : a tuple of decimal integers (a single one needs its comma). */
static int tuple(npy_header *h) {
    if (*h->p != '(') return -1;
    h->p++;
    size_t commas = 0;
    h->nd = 0;
    for (;;) {
        skip_space(h);
        if (*h->p == ')') break;
        if (*h->p < '0' || *h->p > '9') return -1;
        /* Python's integers have no leading zeros ("02048" is a syntax error; "00" is 0) */
        if (*h->p == '0') {
            const char *d = h->p;
            while (*d == '0')
                d++;
            if (*d >= '1' && *d <= '9') return -1;
        }
        errno = 0;
        char *end;
        unsigned long long v = strtoull(h->p, &end, 10);
        if (errno || v > SIZE_MAX / 8) return -1;
        if (h->nd == 3) return -2; /* more dimensions than bench reads */
        h->dims[h->nd++] = (size_t)v;
        h->p = end;
        skip_space(h);
        if (*h->p == ',')
            h->p++, commas++;
        else if (*h->p != ')')
            return -1;
    }
    h->p++;
    return h->nd == 1 && commas == 0 ? -1 : 0; /* (5) is an integer, not a tuple */
}

/* 0, or -1 with h->problem set. */
static int parse_header(npy_header *h, const char *text) {
    char sh[164];
    h->p = text;
    h->fortran_order = -1;
    int seen[3] = {0};
    skip_space(h);
    if (*h->p != '{') goto not_dict;
    h->p++;
    for (;;) {
        skip_space(h);
        if (*h->p == '}') break;
        const char *key;
        size_t key_len;
        if (quoted(h, &key, &key_len)) goto not_dict;
        static const char *const keys[3] = {"descr", "fortran_order", "shape"};
        int k = 0;
        while (k < 3 && (strlen(keys[k]) != key_len || strncmp(keys[k], key, key_len)))
            k++;
        if (k == 3) {
            snprintf(h->problem, sizeof h->problem,
                     "header: unexpected key '%s' (numpy writes descr, fortran_order, shape)",
                     shown(key, key_len, sh));
            return -1;
        }
        if (seen[k]++) {
            snprintf(h->problem, sizeof h->problem, "header: key '%s' appears twice", keys[k]);
            return -1;
        }
        skip_space(h);
        if (*h->p != ':') goto not_dict;
        h->p++;
        skip_space(h);
        if (k == 0) {
            if (quoted(h, &h->descr, &h->descr_len)) {
                snprintf(h->problem, sizeof h->problem,
                         "header: dtype is not a quoted string such as '<f4'");
                return -1;
            }
        } else if (k == 1) {
            if (!strncmp(h->p, "True", 4))
                h->fortran_order = 1, h->p += 4;
            else if (!strncmp(h->p, "False", 5))
                h->fortran_order = 0, h->p += 5;
            else
                h->p = "?"; /* not a value: caught below */
        } else {
            int t = tuple(h);
            if (t == -2) {
                snprintf(h->problem, sizeof h->problem,
                         "shape must be (n,) or (1, n): one activation vector");
                return -1;
            }
            if (t) {
                snprintf(h->problem, sizeof h->problem,
                         "cannot parse the shape in the header (a tuple of integers)");
                return -1;
            }
            h->has_shape = 1;
        }
        skip_space(h);
        if (k == 1 && *h->p != ',' && *h->p != '}') {
            snprintf(h->problem, sizeof h->problem, "header: fortran_order is not True or False");
            return -1;
        }
        if (*h->p == ',')
            h->p++;
        else if (*h->p != '}')
            goto not_dict;
    }
    h->p++;
    skip_space(h);
    if (*h->p) {
        snprintf(h->problem, sizeof h->problem, "header: '%s' after the closing brace",
                 shown(h->p, strlen(h->p), sh));
        return -1;
    }
    if (!seen[0] || !seen[1] || !seen[2]) {
        snprintf(h->problem, sizeof h->problem, "header lacks descr, fortran_order or shape");
        return -1;
    }
    return 0;
not_dict:
    snprintf(h->problem, sizeof h->problem,
             "header is not a dict literal {'key': value, ...} (at '%s')",
             shown(h->p, strlen(h->p), sh));
    return -1;
}

int qk_npy_read_f32(const char *path, float **out, size_t *n_out, char *err, size_t es) {
    size_t rows;
    if (qk_npy_read_f32_rows(path, out, &rows, n_out, err, es)) return -1;
    if (rows == 1) return 0;
    free(*out), *out = NULL, *n_out = 0;
    return fail(err, es, path, "shape must be (n,) or (1, n): one activation vector");
}

int qk_npy_read_f32_rows(const char *path, float **out, size_t *rows_out, size_t *n_out, char *err,
                         size_t es) {
    *out = NULL;
    *n_out = 0, *rows_out = 0;
    /* O_NONBLOCK: a FIFO must not wait for a writer; only regular files are read */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail(err, es, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, es, path, "not a regular file");
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return fail(err, es, path, "cannot open: %s", strerror(errno));
    }
    int rc = -1;
    char *header = NULL;
    unsigned char pre[12];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6)) {
        fail(err, es, path, "not a .npy file (bad magic)");
        goto done;
    }
    size_t hlen;
    if (pre[7] != 0) { /* NumPy has written 1.0, 2.0 and 3.0 only */
        fail(err, es, path, "unsupported .npy version %d.%d (1.0, 2.0, 3.0 are read)", pre[6],
             pre[7]);
        goto done;
    }
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
    npy_header h = {0};
    if (parse_header(&h, header)) {
        fail(err, es, path, "%s", h.problem);
        goto done;
    }
    size_t elem;
    if (h.descr_len == 3 && !strncmp(h.descr, "<f4", 3))
        elem = 4;
    else if (h.descr_len == 3 && !strncmp(h.descr, "<f8", 3))
        elem = 8;
    else {
        char sh[164];
        fail(err, es, path, "dtype '%s' is not float32 or float64 little-endian ('<f4', '<f8')",
             shown(h.descr, h.descr_len, sh));
        goto done;
    }
    if (h.fortran_order) {
        fail(err, es, path, "fortran_order arrays are not read (save with C order)");
        goto done;
    }
    size_t nd = h.nd, *dims = h.dims;
    size_t n, rows = 1;
    if (nd == 1)
        n = dims[0];
    else if (nd == 2)
        rows = dims[0], n = dims[1];
    else {
        fail(err, es, path, "shape must be (n,) or (tokens, n): activation vectors");
        goto done;
    }
    if (n == 0 || rows == 0) {
        fail(err, es, path, "the array is empty");
        goto done;
    }
    if (n > QK_NPY_MAX_VALUES || rows > QK_NPY_MAX_ROWS) {
        fail(err, es, path, "shape (%zu, %zu): at most %d vectors of at most %d values", rows, n,
             QK_NPY_MAX_ROWS, QK_NPY_MAX_VALUES);
        goto done;
    }
    n *= rows;
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
    *n_out = n / rows, *rows_out = rows;
    rc = 0;
    goto done;
truncated:
    fail(err, es, path, "truncated .npy header");
done:
    free(header);
    fclose(f);
    return rc;
}
