"""The short table printed last by bench/gpu-check.sh: our CUDA ops beside PyTorch's, same shapes."""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"({path}: {e})")
        return None


ours, torch, out = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
cuda = next((r for r in (ours or {}).get("results", []) if r["device"] == "cuda"), None)
if not cuda:
    print("no CUDA op results")
    sys.exit(1)
theirs = {(r["op"], r["dtype"], r["shape"]): r["ms"] for r in (torch or {}).get("rows", [])}
limit = cuda["limit"]["gbPerSecond"]
print(f"copy bandwidth: ours {limit:.0f} GB/s" + (f", torch {torch['copy_gbps']:.0f} GB/s" if torch else ""))
header = (f"{'op':<18} {'dtype':<14} {'shape':<36} {'ours us':>9} {'GB/s':>7} {'TFLOP/s':>8} {'of copy':>8} "
          f"{'torch us':>9} {'speedup':>8}")
print(header)
summary = []
for r in cuda["rows"]:
    us = r["medianSeconds"] * 1e6
    t = theirs.get((r["op"], r["dtype"], r["shape"]))
    t_us = t * 1e3 if t is not None else None
    gflops = r.get("gflopsPerSecond")
    frac = r["fractionOfLimit"] if r.get("limitKind", "bytes") == "bytes" else None
    summary.append(dict(op=r["op"], dtype=r["dtype"], shape=r["shape"], ours_us=us, gbps=r["gbPerSecond"],
                        tflops=gflops / 1e3 if gflops is not None else None, fraction_of_copy=frac, torch_us=t_us))
    tf = f"{gflops / 1e3:>8.1f}" if gflops is not None else f"{'':>8}"
    fr = f"{100 * frac:>7.0f}%" if frac is not None else f"{'-':>8}"
    print(f"{r['op']:<18} {r['dtype']:<14} {r['shape']:<36} {us:>9.1f} {r['gbPerSecond']:>7.0f} {tf} {fr} "
          + (f"{t_us:>9.1f} {t_us / us:>7.2f}x" if t_us else f"{'-':>9} {'-':>8}"))
with open(out, "w") as f:
    json.dump(dict(copy_gbps=limit, rows=summary), f, indent=2)
