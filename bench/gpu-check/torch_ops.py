"""PyTorch twins of mini-vllm's ops on the shapes of bench/ops.bench.ts, timed with CUDA events the same way
(7 runs of 20 back-to-back calls, median per call), plus the device-to-device copy bandwidth."""
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
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
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
    out = dict(torch=torch.__version__, device=torch.cuda.get_device_name(0),
               copy_gbps=2 * n * 4 / (copy_ms / 1e3) / 1e9, rows=rows)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"torch {out['torch']} on {out['device']}: copy {out['copy_gbps']:.0f} GB/s, {len(rows)} ops timed")


if __name__ == "__main__":
    main()
