"""Writes the hostile seeds of fuzz_gguf (issue 12), crafted byte by byte with struct so that no
GGUF writer tidies them up; tests/test_cli.sh runs bench on each and expects one line, exit 2.
usage: make_hostile.py [DIR] (default: gguf_corpus beside this file)"""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "gguf_corpus")
STRING, UINT8, UINT32, UINT64 = 8, 0, 4, 10
F32, F64 = 0, 28


def gguf_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def header(n_tensors, n_kvs):
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kvs)


def kv_string(key, value):
    return gguf_string(key) + struct.pack("<I", STRING) + gguf_string(value)


def kv_u32(key, value):
    return gguf_string(key) + struct.pack("<II", UINT32, value)


def tensor_info(name, dims, ggml_type, offset):
    return (gguf_string(name) + struct.pack("<I", len(dims)) +
            b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ggml_type, offset))


def padded(b, align=32):
    return b + b"\0" * (-len(b) % align)


def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


# 1: an f32 tensor of 2^62 elements: 2^64 bytes wrap to 0 (issue 12, item 1)
write("hostile-size-wrap-f32.gguf",
      padded(header(1, 1) + kv_string("general.architecture", "qwen3moe") +
             tensor_info("wrap", [1 << 62], F32, 0)) + b"\0" * 32)
# 1: f64, 2^61+1 elements: 2^64+8 bytes wrap to 8
write("hostile-size-wrap-f64.gguf",
      padded(header(1, 1) + kv_string("general.architecture", "qwen3moe") +
             tensor_info("wrap", [(1 << 61) + 1], F64, 0)) + b"\0" * 32)
# 2: block_count 4e9 in a file with one small tensor
write("hostile-block-count.gguf",
      padded(header(1, 2) + kv_string("general.architecture", "qwen3moe") +
             kv_u32("qwen3moe.block_count", 4000000000) +
             tensor_info("blk.0.ffn_gate_exps.weight", [256, 1, 1], 12, 0)) + b"\0" * 144)
# 3: a header claiming as many key/values as the file could hold; the rest is zeros, which read
# as key/values with an empty key (the big sparse version is made by test_cli.sh)
size = 4096
write("hostile-kv-count.gguf", (header(0, (size - 24) // 13)).ljust(size, b"\0"))
# 3 (a sibling): a string array whose count claims every 8 bytes left; the zeros read as empty
# strings until a key after it turns out empty (the big sparse version is made by test_cli.sh)
key = gguf_string("a.strings")
arr = key + struct.pack("<IIQ", 9, STRING, (size - 24 - len(key) - 16) // 8)
write("hostile-string-array.gguf", (header(0, 2) + arr).ljust(size, b"\0"))
# 6: control bytes and an escape sequence in the strings --inspect and --model print
write("hostile-escapes.gguf",
      padded(header(1, 3) + kv_string("general.architecture", "qwen3moe\nbench: fake\x1b[31m") +
             kv_string("general.name", "red\x1b[31m\rline\x00hidden") +
             kv_u32("qwen3moe\nbench: fake\x1b[31m.block_count", 1) +
             tensor_info("blk.0.ffn_gate_exps.weight", [256, 1, 1], 12, 0)) + b"\0" * 144)
