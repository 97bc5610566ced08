"""Writes the seed corpus of fuzz_gguf with llama.cpp's `gguf` writer (run with the venv of
tests/setup_python.sh): small files that reach every branch of the reader's happy path."""
import os
import sys

import gguf
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "gguf_corpus")
rng = np.random.default_rng(1)


def every_value_type(w):
    T = gguf.GGUFValueType
    for k, v, t in (("u8", 1, T.UINT8), ("i8", -1, T.INT8), ("u16", 2, T.UINT16),
                    ("i16", -2, T.INT16), ("u32", 3, T.UINT32), ("i32", -3, T.INT32),
                    ("f32", 0.5, T.FLOAT32), ("b", True, T.BOOL), ("s", "text", T.STRING),
                    ("u64", 4, T.UINT64), ("i64", -4, T.INT64), ("f64", 0.25, T.FLOAT64)):
        w.add_key_value(f"seed.{k}", v, t)
    w.add_array("seed.ints", [1, 2, 3])
    w.add_array("seed.floats", [0.5, 1.5])
    w.add_array("seed.strings", ["x", "", "yz"])


path = os.path.join(out, "qwen3moe-tiny.gguf")
w = gguf.GGUFWriter(path, "qwen3moe")
w.add_block_count(1)
w.add_expert_count(2)
every_value_type(w)
q4k = rng.integers(0, 256, size=(2, 2, 144), dtype=np.uint8)
w.add_tensor("blk.0.ffn_gate_exps.weight", q4k, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
w.add_tensor("blk.0.ffn_up_exps.weight", q4k, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
q6k = rng.integers(0, 256, size=(2, 2, 210), dtype=np.uint8)
w.add_tensor("blk.0.ffn_down_exps.weight", q6k, raw_dtype=gguf.GGMLQuantizationType.Q6_K)
w.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# the same file as GGUF v2 (identical layout on little-endian machines)
data = bytearray(open(path, "rb").read())
data[4:8] = (2).to_bytes(4, "little")
open(os.path.join(out, "qwen3moe-tiny-v2.gguf"), "wb").write(bytes(data))

path = os.path.join(out, "metadata-only.gguf")
w = gguf.GGUFWriter(path, "llama")
every_value_type(w)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
