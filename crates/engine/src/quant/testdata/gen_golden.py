#!/usr/bin/env python3
"""Regenerates ggml_golden.bin from a llama.cpp build (libggml-base.so / libggml-cpu.so).

usage: gen_golden.py LLAMA_CPP_BUILD_BIN_DIR OUT_FILE

Format (little-endian): b"LCQG", u32 version=1, u32 n, f32 x[n], f32 y[n], u32 count, then per
record: u32 ggml type id, u32 nbytes, u8 quant[nbytes] (ggml *_ref quantizer on x),
f32 deq[n] (ggml dequantize_row on those bytes), f32 dot (ggml_vec_dot_<t>_q8_<a> of the packed row
with y quantized by ggml-cpu's quantize_row_q8_<a>), u32 act_nbytes, u8 act[act_nbytes].
"""
import ctypes, random, struct, sys

bindir, out = sys.argv[1], sys.argv[2]
base = ctypes.CDLL(bindir + "/libggml-base.so", mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(bindir + "/libggml-cpu.so", mode=ctypes.RTLD_GLOBAL)
try:
    cpu.ggml_cpu_init()
except AttributeError:
    pass

N = 1024
rng = random.Random(1234)
x = [rng.gauss(0.0, 1.0) * (4.0 if rng.random() < 0.02 else 1.0) for _ in range(N)]
for i in range(256, 288):  # one all-zero 32-block
    x[i] = 0.0
y = [rng.gauss(0.0, 1.0) for _ in range(N)]
FA = ctypes.c_float * N
xa, ya = FA(*x), FA(*y)
x = list(xa)
y = list(ya)

# (id, name, block elems, block bytes, act name, act block bytes, act block elems)
TYPES = [
    (2, "q4_0", 32, 18, "q8_0", 34, 32),
    (3, "q4_1", 32, 20, "q8_1", 36, 32),
    (6, "q5_0", 32, 22, "q8_0", 34, 32),
    (7, "q5_1", 32, 24, "q8_1", 36, 32),
    (8, "q8_0", 32, 34, "q8_0", 34, 32),
    (10, "q2_K", 256, 84, "q8_K", 292, 256),
    (11, "q3_K", 256, 110, "q8_K", 292, 256),
    (12, "q4_K", 256, 144, "q8_K", 292, 256),
    (13, "q5_K", 256, 176, "q8_K", 292, 256),
    (14, "q6_K", 256, 210, "q8_K", 292, 256),
]

recs = []
for tid, name, be, bb, act, abb, abe in TYPES:
    nbytes = N // be * bb
    q = (ctypes.c_uint8 * nbytes)()
    getattr(base, "quantize_row_%s_ref" % name)(xa, q, ctypes.c_int64(N))
    deq = FA()
    getattr(base, "dequantize_row_%s" % name)(q, deq, ctypes.c_int64(N))
    anb = N // abe * abb
    aq = (ctypes.c_uint8 * anb)()
    getattr(cpu, "quantize_row_%s" % act)(ya, aq, ctypes.c_int64(N))
    s = ctypes.c_float(0.0)
    getattr(cpu, "ggml_vec_dot_%s_%s" % (name, act))(
        ctypes.c_int(N), ctypes.byref(s), ctypes.c_size_t(0), q, ctypes.c_size_t(0), aq,
        ctypes.c_size_t(0), ctypes.c_int(1))
    recs.append((tid, bytes(q), list(deq), s.value, bytes(aq)))

with open(out, "wb") as f:
    f.write(b"LCQG" + struct.pack("<II", 1, N))
    f.write(struct.pack("<%df" % N, *x))
    f.write(struct.pack("<%df" % N, *y))
    f.write(struct.pack("<I", len(recs)))
    for tid, q, deq, s, aq in recs:
        f.write(struct.pack("<II", tid, len(q)))
        f.write(q)
        f.write(struct.pack("<%df" % N, *deq))
        f.write(struct.pack("<fI", s, len(aq)))
        f.write(aq)
print("wrote", out)
