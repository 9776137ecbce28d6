"""PyTorch twins of mini-vllm's ops on the shapes of bench/ops.bench.ts, timed with CUDA events the same way
(7 runs of 20 back-to-back calls, median per call), plus the device-to-device copy bandwidth. Attention is
scaled_dot_product_attention on K/V gathered from the same paged pool through the block tables (the gather is
part of the timed call, as reading through the block table is part of ours)."""
import argparse
import json
import statistics

import torch


def time_ms(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(7):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        stop.record()
        torch.cuda.synchronize()
        per_call.append(start.elapsed_time(stop) / reps)
    return statistics.median(per_call)


def rope_neox(positions, q, k, cos_sin, head_size):
    # not in place: torch has no fused rotary; the result is written back with copy_ as our op does in place
    cos, sin = cos_sin[positions].chunk(2, dim=-1)
    cos, sin = cos[:, None, :], sin[:, None, :]

    def rot(x):
        t = x.view(x.shape[0], -1, head_size)
        x1, x2 = t[..., : head_size // 2], t[..., head_size // 2 :]
        x.copy_(torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).view(x.shape))

    rot(q)
    rot(k)


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def linear_rows(rows, dev):
    """F.linear on bench/ops.bench.ts's linear shapes (same dtype for x and weight)."""
    F = torch.nn.functional
    for name, dt in DTYPES.items():
        for (out_f, in_f) in ((4096, 4096), (11008, 4096)):
            for tokens in (1, 4, 16):
                x = torch.full((tokens, in_f), 0.5, dtype=dt, device=dev)
                w = torch.full((out_f, in_f), 0.01, dtype=dt, device=dev)
                rows.append(dict(op="linear GEMV", dtype=name, shape=f"{tokens} x {in_f} -> {out_f}",
                                 ms=time_ms(lambda: F.linear(x, w))))
        for tokens in (128, 512, 4096):
            x = torch.full((tokens, 4096), 0.5, dtype=dt, device=dev)
            w = torch.full((4096, 4096), 0.01, dtype=dt, device=dev)
            rows.append(dict(op="linear GEMM", dtype=name, shape=f"{tokens} x 4096 -> 4096",
                             ms=time_ms(lambda: F.linear(x, w))))
    x = torch.full((512, 4096), 0.5, device=dev)
    w = torch.full((11008, 4096), 0.01, device=dev)
    rows.append(dict(op="linear GEMM", dtype="float32", shape="512 x 4096 -> 11008", ms=time_ms(lambda: F.linear(x, w))))


def sdpa(q, k, v, causal):
    F = torch.nn.functional
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    except TypeError:  # torch < 2.5: repeat the KV heads
        rep = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1),
                                              is_causal=causal)


def attention_rows(rows, dev):
    """Decode (1 query token per sequence) and causal prefill, Llama-3-8B heads, block size 16."""
    heads, kv_heads, head_size, bs = 32, 8, 128, 16
    cases = [("attention decode", s, c, 1) for s, c in ((1, 2048), (32, 1024), (64, 4096))]
    cases += [("attention prefill", s, n, n) for s, n in ((1, 4096), (8, 1024))]
    for name, dt in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        for op, seqs, ctx, q_len in cases:
            per = (ctx + bs - 1) // bs
            pool_k = torch.full((seqs * per, bs, kv_heads, head_size), 0.01, dtype=dt, device=dev)
            pool_v = torch.full((seqs * per, bs, kv_heads, head_size), 0.02, dtype=dt, device=dev)
            tables = torch.randperm(seqs * per, device=dev).view(seqs, per)
            q = torch.full((seqs, heads, q_len, head_size), 0.1, dtype=dt, device=dev)

            def run():
                k = pool_k[tables].view(seqs, per * bs, kv_heads, head_size)[:, :ctx].transpose(1, 2)
                v = pool_v[tables].view(seqs, per * bs, kv_heads, head_size)[:, :ctx].transpose(1, 2)
                return sdpa(q, k, v, causal=q_len > 1)

            shape = (f"{seqs} seq x {ctx} ctx, {heads}/{kv_heads}x{head_size}" if op == "attention decode"
                     else f"{seqs} x {ctx}-token prompt, {heads}/{kv_heads}x{head_size}")
            rows.append(dict(op=op, dtype=name, shape=shape, ms=time_ms(run, reps=10)))
            del pool_k, pool_v, q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    dev = torch.device("cuda")
    n = (1 << 30) // 4
    src, dst = torch.ones(n, device=dev), torch.empty(n, device=dev)
    copy_ms = time_ms(lambda: dst.copy_(src), reps=10)
    del src, dst
    rows = []
    dtypes = DTYPES
    hidden, d, heads, kv_heads, head_size, max_pos = 4096, 4096, 32, 8, 128, 8192
    for name, dt in dtypes.items():
        for tokens in (7, 8192):
            x = torch.full((tokens, hidden), 0.5, dtype=dt, device=dev)
            r = torch.full((tokens, hidden), 0.25, dtype=dt, device=dev)
            w = torch.ones(hidden, dtype=dt, device=dev)
            rows.append(dict(op="rmsNorm", dtype=name, shape=f"[{tokens}, {hidden}]",
                             ms=time_ms(lambda: torch.nn.functional.rms_norm(x, (hidden,), w, 1e-6))))

            def fused():
                r.add_(x)
                x.copy_(torch.nn.functional.rms_norm(r, (hidden,), w, 1e-6))

            rows.append(dict(op="fusedAddRmsNorm", dtype=name, shape=f"[{tokens}, {hidden}]", ms=time_ms(fused)))
            g = torch.full((tokens, 2 * d), 0.5, dtype=dt, device=dev)
            rows.append(dict(op="siluAndMul", dtype=name, shape=f"[{tokens}, 2 x {d}]",
                             ms=time_ms(lambda: torch.nn.functional.silu(g[:, :d]) * g[:, d:])))
            pos = (torch.arange(tokens, device=dev) * 7919) % max_pos
            q = torch.full((tokens, heads * head_size), 0.5, dtype=dt, device=dev)
            k = torch.full((tokens, kv_heads * head_size), 0.5, dtype=dt, device=dev)
            inv = 1.0 / (500000 ** (torch.arange(0, head_size, 2, device=dev, dtype=torch.float32) / head_size))
            ang = torch.arange(max_pos, device=dev, dtype=torch.float32)[:, None] * inv[None, :]
            cos_sin = torch.cat((ang.cos(), ang.sin()), dim=-1).to(dt)
            rows.append(dict(op="rotaryEmbedding", dtype=name, shape=f"{tokens} tok, {heads}/{kv_heads} heads x {head_size}",
                             ms=time_ms(lambda: rope_neox(pos, q, k, cos_sin, head_size))))
            del x, r, w, g, q, k
    linear_rows(rows, dev)
    attention_rows(rows, dev)
    out = dict(torch=torch.__version__, device=torch.cuda.get_device_name(0),
               copy_gbps=2 * n * 4 / (copy_ms / 1e3) / 1e9, rows=rows)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"torch {out['torch']} on {out['device']}: copy {out['copy_gbps']:.0f} GB/s, {len(rows)} ops timed")


if __name__ == "__main__":
    main()
