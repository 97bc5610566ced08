/* The .npy reader and writer: round trips, and every malformed file gives an error line naming
 * the file and the problem, never a crash or a silent default. */
#define _POSIX_C_SOURCE 200809L
#include "qk_test.h"
#include "../bench/npy.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[256];

/* Writes a file: magic, version, header text (padded as numpy does unless raw), payload. */
static void write_file(int major, const char *header, const void *payload, size_t payload_bytes) {
    FILE *f = fopen(path, "wb");
    size_t hl = strlen(header);
    fwrite("\x93NUMPY", 1, 6, f);
    unsigned char v[2] = {(unsigned char)major, 0};
    fwrite(v, 1, 2, f);
    if (major == 1) {
        unsigned char l[2] = {(unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
        fwrite(l, 1, 2, f);
    } else {
        unsigned char l[4] = {(unsigned char)(hl & 0xff), (unsigned char)(hl >> 8), 0, 0};
        fwrite(l, 1, 4, f);
    }
    fwrite(header, 1, hl, f);
    if (payload_bytes) fwrite(payload, 1, payload_bytes, f);
    fclose(f);
}

static void expect_error(const char *what, const char *needle) {
    float *x = (float *)1;
    size_t n = 99;
    char err[512] = "";
    int rc = qk_npy_read_f32(path, &x, &n, err, sizeof err);
    CHECK(rc == -1 && x == NULL && n == 0, "%s: accepted (rc %d, n %zu)", what, rc, n);
    CHECK(strstr(err, path) && strstr(err, needle) && !strchr(err, '\n'),
          "%s: message '%s' should name the file and contain '%s'", what, err, needle);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/qk_test_npy_%d.npy", (int)getpid());
    float f[5] = {1.5f, -2.25f, 0.0f, -0.0f, 3e38f};
    double d[5] = {1.5, -2.25, 0.0, -0.0, 1e-300};

    /* round trips through our writer */
    float *x;
    size_t n;
    char err[512];
    CHECK(qk_npy_write_f32(path, f, 5) == 0, "write f32");
    CHECK(qk_npy_read_f32(path, &x, &n, err, sizeof err) == 0 && n == 5 && !memcmp(x, f, sizeof f),
          "f32 round trip: %s", err);
    free(x);
    CHECK(qk_npy_write_f64(path, d, 5) == 0, "write f64");
    CHECK(qk_npy_read_f32(path, &x, &n, err, sizeof err) == 0 && n == 5 && x[0] == 1.5f &&
              x[1] == -2.25f && x[4] == (float)1e-300 && signbit(x[3]),
          "f64 read as f32: %s", err);
    free(x);
    /* numpy's own layouts: version 2 header, shape (1, n), spaces inside the tuple */
    write_file(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 5), }\n", f, sizeof f);
    CHECK(qk_npy_read_f32(path, &x, &n, err, sizeof err) == 0 && n == 5 && !memcmp(x, f, sizeof f),
          "(1, n) in version 2.0: %s", err);
    free(x);

    /* malformed files */
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }\n";
    write_file(1, good, f, sizeof f - 4);
    expect_error("short payload", "header promises");
    write_file(1, good, d, sizeof d);
    expect_error("long payload", "header promises");
    write_file(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (5,), }\n", f, sizeof f);
    expect_error("big-endian", "dtype");
    write_file(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }\n", f, sizeof f);
    expect_error("int32", "dtype");
    write_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (5,), }\n", f, sizeof f);
    expect_error("fortran order", "fortran_order");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 1), }\n", f, sizeof f);
    expect_error("matrix", "shape");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }\n", f, 0);
    expect_error("empty", "empty");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5x,), }\n", f, sizeof f);
    expect_error("bad shape text", "shape");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n", f,
               sizeof f);
    expect_error("overflowing shape", "shape");
    write_file(1, "{'descr': '<f4', 'shape': (5,), }\n", f, sizeof f);
    expect_error("missing key", "lacks");
    write_file(7, good, f, sizeof f);
    expect_error("version 7", "version");
    write_file(1, good, f, sizeof f); /* version 1.9: NumPy has written only x.0 */
    FILE *vf = fopen(path, "r+b");
    CHECK(vf && fseek(vf, 7, SEEK_SET) == 0 && fputc(9, vf) == 9 && fclose(vf) == 0, "patch");
    expect_error("version 1.9", "version 1.9");
    float nan_payload[5] = {1, 2, NAN, 4, 5};
    write_file(1, good, nan_payload, sizeof nan_payload);
    expect_error("NaN value", "value 2 is not finite");
    double huge[5] = {1, 2, 3, 1e300, 5};
    write_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }\n", huge, sizeof huge);
    expect_error("f64 beyond f32 range", "value 3 is not finite");
    /* the header is a Python dict literal, parsed as one (as numpy's literal_eval does) */
    write_file(1, "{'descr':'<f4'junk 'fortran_order':Falsehood 'shape':(5,)}\n", f, sizeof f);
    expect_error("not a dict: junk between entries", "header");
    write_file(1,
               "{'descr': '<f4', 'fortran_order': False, 'note': \"'shape': (5,)\", "
               "'shape': (1,), }\n",
               f, sizeof f);
    expect_error("an extra key whose value mimics 'shape'", "'note'");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), 'shape': (5,)}\n", f,
               sizeof f);
    expect_error("a repeated key", "twice");
    write_file(1, "{'descr': '<f4x', 'fortran_order': False, 'shape': (5,), }\n", f, sizeof f);
    expect_error("dtype with a suffix", "dtype");
    write_file(1, "{'descr': '<f4', 'fortran_order': Falsehood, 'shape': (5,), }\n", f, sizeof f);
    expect_error("fortran_order not a bool", "fortran_order");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5), }\n", f, sizeof f);
    expect_error("shape not a tuple", "shape");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), } junk\n", f, sizeof f);
    expect_error("text after the dict", "after");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,,), }\n", f, sizeof f);
    expect_error("two commas in the shape", "shape");
    /* leading zeros: a syntax error in Python (ast.literal_eval, hence NumPy) */
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (05,), }\n", f, sizeof f);
    expect_error("a leading zero in the shape", "shape");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0001, 5), }\n", f, sizeof f);
    expect_error("leading zeros in the shape", "shape");
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 00), }\n", f, 0);
    expect_error("00 is zero, as Python reads it", "empty");
    /* what numpy writes or accepts: double quotes, no trailing comma, spaces and newlines */
    write_file(1, "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":( 5 , )}   \n", f,
               sizeof f);
    CHECK(qk_npy_read_f32(path, &x, &n, err, sizeof err) == 0 && n == 5, "double quotes: %s", err);
    if (n == 5) free(x);
    /* a vector longer than any matrix: refused before its values are read (a sparse file of 1 GiB
     * that the header describes exactly) */
    write_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (268435456,), }\n", f, 0);
    CHECK(truncate(path, 10 + 66 + (1 << 30)) == 0, "truncate");
    expect_error("a 1 GiB vector", "at most 1048576");
    /* not a regular file: a FIFO with no writer is refused at once (the alarm ends a hang) */
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    alarm(10);
    expect_error("a FIFO", "not a regular file");
    alarm(0);
    unlink(path);
    FILE *fp = fopen(path, "wb");
    fwrite("GIF89a", 1, 6, fp);
    fclose(fp);
    expect_error("bad magic", "magic");
    fp = fopen(path, "wb");
    fwrite("\x93NUMPY\x01\x00\x40\x00{'descr'", 1, 17, fp);
    fclose(fp);
    expect_error("truncated header", "truncated");
    unlink(path);
    expect_error("missing file", "cannot open");
    return qk_test_finish("npy");
}
