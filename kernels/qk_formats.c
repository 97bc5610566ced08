#include "qk_formats.h"

const char *qk_format_name(qk_format f) {
    switch (f) {
    case QK_FMT_F32:
        return "f32";
    case QK_FMT_Q4_K:
        return "q4_K";
    case QK_FMT_Q8_K:
        return "q8_K";
    case QK_FMT_Q8_1:
        return "q8_1";
    default:
        return "?";
    }
}

int qk_format_block(qk_format f) {
    switch (f) {
    case QK_FMT_Q4_K:
    case QK_FMT_Q8_K:
        return QK_K;
    case QK_FMT_Q8_1:
        return QK8_1;
    default:
        return 1;
    }
}

size_t qk_format_bytes(qk_format f, size_t n) {
    switch (f) {
    case QK_FMT_F32:
        return 4 * n;
    case QK_FMT_Q4_K:
        return n / QK_K * sizeof(qk_block_q4k);
    case QK_FMT_Q8_K:
        return n / QK_K * sizeof(qk_block_q8k);
    case QK_FMT_Q8_1:
        return n / QK8_1 * sizeof(qk_block_q8_1);
    default:
        return 0;
    }
}
