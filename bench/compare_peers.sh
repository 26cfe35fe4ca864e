#!/usr/bin/env bash
# bench/compare_peers.sh - our `mobileclip bench` beside ONNX Runtime and PyTorch, same
# machine, same threads, same batch, same run; prints ours/peer per variant and encoder.
#
#   bench/compare_peers.sh [--threads N] [--batch B] [--runs R] [--archs "s0 s1 s2 b"]
#                          [--precisions "f32 bf16 int8"] [--update]
#
# A benchmark tool, never a build or test dependency. It creates a throw-away virtualenv
# ($MC_PEERS_VENV, default /tmp/mc_peers_venv) with torch (CPU), torchvision, timm,
# open_clip_torch, onnx and onnxruntime from the package registry, fetches the reference code
# (github.com/apple/ml-mobileclip, or $MC_MOBILECLIP_SRC), builds each architecture with random
# weights (speed does not depend on them), reparameterizes it and exports the image and text
# encoders to ONNX (opset 17, all ORT graph optimisations at load). Inputs as ours: one image at
# the model resolution, a 20-token caption padded to 77, and a batch of B images.
# Per arch, in this order: ORT, PyTorch, ours (`build/mobileclip bench --json`, once per
# --precision), so a change of machine load hits all alike; one table row per arch and
# precision, every ratio against the peers' FP32. --update rewrites the results table of
# docs/BENCHMARKS.md (between the peers:begin/peers:end markers).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 batch=16 runs=20 archs="s0 s1 s2 b" precisions="f32 bf16 int8" update=0
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --archs) archs=$2; shift 2 ;;
    --precisions) precisions=$2; shift 2 ;;
    --update) update=1; shift ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "compare_peers.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
cli=${MC_CLI:-build/mobileclip}
[ -x "$cli" ] || { echo "compare_peers.sh: $cli not built (cmake --build build --target mobileclip)" >&2; exit 1; }
venv=${MC_PEERS_VENV:-/tmp/mc_peers_venv}
work=${MC_PEERS_WORK:-/tmp/mc_peers}
mkdir -p "$work"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch torchvision ||
        "$venv/bin/pip" install -q torch torchvision
    "$venv/bin/pip" install -q timm open_clip_torch onnx onnxruntime onnxscript
fi
src=${MC_MOBILECLIP_SRC:-$work/ml-mobileclip}
[ -d "$src/mobileclip" ] || git clone -q --depth 1 https://github.com/apple/ml-mobileclip "$src"

cat > "$work/peers.py" <<'EOF'
"""Exports one MobileCLIP variant (random weights, reparameterized) to ONNX and times ONNX
Runtime and PyTorch on it. Prints one JSON object."""
import json, os, statistics, sys, time
import numpy as np
import torch

arch, threads, batch, runs, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(threads)
torch.manual_seed(0)
import mobileclip
model, _, _ = mobileclip.create_model_and_transforms("mobileclip_" + arch, pretrained=None, reparameterize=True)
model.eval()
R = json.load(open(os.path.join(os.path.dirname(mobileclip.__file__), "configs", f"mobileclip_{arch}.json")))["image_cfg"]["image_size"]

class Img(torch.nn.Module):
    def __init__(s, m): super().__init__(); s.m = m
    def forward(s, x): return s.m.encode_image(x, normalize=True)
class Txt(torch.nn.Module):
    def __init__(s, m): super().__init__(); s.m = m
    def forward(s, t): return s.m.encode_text(t, normalize=True)

img = torch.rand(1, 3, R, R)
imgs = torch.rand(batch, 3, R, R)
tok = torch.zeros(1, 77, dtype=torch.long)
tok[0, 0] = 49406
tok[0, 1:19] = torch.arange(1, 19) * 97 + 320
tok[0, 19] = 49407
# static shapes (the SE blocks pool over the traced feature-map size): one file per batch size
ip, bp = os.path.join(work, f"{arch}_image_b1.onnx"), os.path.join(work, f"{arch}_image_b{batch}.onnx")
tp = os.path.join(work, f"{arch}_text.onnx")
with torch.inference_mode():
    for m, x, path, name in ((Img(model), img, ip, "x"), (Img(model), imgs, bp, "x"), (Txt(model), tok, tp, "t")):
        if not os.path.exists(path):
            torch.onnx.export(m, x, path, input_names=[name], output_names=["e"], opset_version=17, dynamo=False)

def timed(f, n):
    for _ in range(2): f()
    t = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); t.append((time.perf_counter() - t0) * 1e3)
    t.sort()
    return statistics.median(t), t[min(len(t) - 1, int(0.9 * len(t) + 0.999999) - 1)]

import onnxruntime as ort
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
si = ort.InferenceSession(ip, so, providers=["CPUExecutionProvider"])
sb = ort.InferenceSession(bp, so, providers=["CPUExecutionProvider"])
st = ort.InferenceSession(tp, so, providers=["CPUExecutionProvider"])
x1, xb, t1 = img.numpy(), imgs.numpy(), tok.numpy()
out = {"arch": arch, "threads": threads, "batch": batch}
out["ort_image_ms_p50"], out["ort_image_ms_p90"] = timed(lambda: si.run(None, {"x": x1}), runs)
out["ort_text_ms_p50"], out["ort_text_ms_p90"] = timed(lambda: st.run(None, {"t": t1}), runs)
bm, _ = timed(lambda: sb.run(None, {"x": xb}), max(3, runs // 4))
out["ort_image_batch_img_per_s"] = batch / (bm * 1e-3)
with torch.inference_mode():
    out["torch_image_ms_p50"], out["torch_image_ms_p90"] = timed(lambda: model.encode_image(img, normalize=True), runs)
    out["torch_text_ms_p50"], out["torch_text_ms_p90"] = timed(lambda: model.encode_text(tok, normalize=True), runs)
    bm, _ = timed(lambda: model.encode_image(imgs, normalize=True), max(3, runs // 4))
    out["torch_image_batch_img_per_s"] = batch / (bm * 1e-3)
out["versions"] = {"torch": torch.__version__, "onnxruntime": ort.__version__}
print(json.dumps(out))
EOF

results="$work/results.jsonl"
: > "$results"
echo "load: $(uptime | sed 's/.*load average/load average/')"
for a in $archs; do
    peer=$(PYTHONPATH="$src" OMP_NUM_THREADS=$threads "$venv/bin/python" "$work/peers.py" "$a" "$threads" "$batch" "$runs" "$work" 2>"$work/$a.log" | tail -1)
    ours=""
    for p in $precisions; do
        o=$("$cli" bench --arch "$a" --threads "$threads" --batch "$batch" --runs "$runs" --precision "$p" --json)
        ours="$ours${ours:+,}\"$p\":$o"
    done
    echo "{\"peer\":$peer,\"ours\":{$ours}}" >> "$results"
done
echo "load: $(uptime | sed 's/.*load average/load average/')"

table=$("$venv/bin/python" - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| variant | precision (ours) | image ms: ours | ORT | PyTorch | ours/ORT | ours/PyTorch | text ms: ours | ORT | PyTorch | ours/ORT | ours/PyTorch | batch img/s: ours | ORT | ours/ORT | image GFLOP/s (ours) | peak RSS MB (ours) | load ms (ours) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
  p = r["peer"]
  for prec, o in r["ours"].items():
    a = p["arch"]; m = o[a]
    print(f"| {a} | {prec} ({o.get('gemm_kernels', o['isa'])}) | {m['image_ms_p50']:.1f} | {p['ort_image_ms_p50']:.1f} | {p['torch_image_ms_p50']:.1f} | "
          f"{m['image_ms_p50']/p['ort_image_ms_p50']:.2f}x | {m['image_ms_p50']/p['torch_image_ms_p50']:.2f}x | "
          f"{m['text_ms_p50']:.1f} | {p['ort_text_ms_p50']:.1f} | {p['torch_text_ms_p50']:.1f} | "
          f"{m['text_ms_p50']/p['ort_text_ms_p50']:.2f}x | {m['text_ms_p50']/p['torch_text_ms_p50']:.2f}x | "
          f"{m['image_batch_img_per_s']:.1f} | {p['ort_image_batch_img_per_s']:.1f} | "
          f"{m['image_batch_img_per_s']/p['ort_image_batch_img_per_s']:.2f}x | {m['image_gflops']:.0f} | "
          f"{m['peak_rss_mb']:.0f} | {m['load_ms']:.0f} |")
o = next(iter(rows[0]["ours"].values()))
print(f"\n{o['threads']} threads, batch {rows[0]['peer']['batch']}, ours with {o['isa']} kernels; FMA peak "
      + ", ".join(f"{k} {v:.0f}" for k, v in o["fma_peak_gflops"].items()) + " GFLOP/s; "
      + f"torch {rows[0]['peer']['versions']['torch']}, onnxruntime {rows[0]['peer']['versions']['onnxruntime']}. "
      + "Peers run FP32 in every row. Latency ratios below 1 and throughput ratios above 1 favour us.")
EOF
)
echo "$table"
if [ "$update" = 1 ]; then
    f=docs/BENCHMARKS.md
    grep -q '<!-- peers:begin -->' "$f" || { echo "compare_peers.sh: no peers:begin marker in $f" >&2; exit 1; }
    "$venv/bin/python" - "$f" "$table" "$(date -u +%Y-%m-%d) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores" <<'EOF'
import sys
f, table, when = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(f).read()
a, b = s.index("<!-- peers:begin -->"), s.index("<!-- peers:end -->")
open(f, "w").write(s[:a] + "<!-- peers:begin -->\nMeasured " + when + " by `bench/compare_peers.sh`:\n\n" + table + "\n" + s[b:])
EOF
fi
