#!/usr/bin/env python3
"""Peer benchmark for bench/bench_caption.c: open_clip 7260a46's CoCa (a built-in model config,
random init: timing only) generating captions with PyTorch on CPU, the same settings as
bench_caption (seq_len 30, top_p 0.9 with fixed_output_length as DataCompDR, or the default
6-beam grouped search), one warm-up then the timed run. Same throw-away environment as
gen_coca_ref.py.

  python3 bench_coca_torch.py OPEN_CLIP_SRC coca_ViT-B-32|CONFIG.json BATCH top_p|beam THREADS [SEQ_LEN]
(SEQ_LEN default 30, as bench_caption --seq-len)
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import import_open_clip  # noqa: E402

CoCa, _ = import_open_clip(sys.argv[1])

name, B, method, threads = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
path = name if name.endswith(".json") else os.path.join(sys.argv[1], "open_clip", "model_configs", name + ".json")
with open(path) as f:
    cfg = json.load(f)
cfg.pop("custom_text", None)
model = CoCa(**cfg).eval()
# open_clip leaves some CoCa tensors uninitialised (torch.empty): give every one a finite value
with torch.no_grad():
    for n, t in model.state_dict().items():
        if t.dtype.is_floating_point:
            fan = t.shape[-1] if t.dim() >= 2 else 1
            t.uniform_(-(3.0 / fan) ** 0.5, (3.0 / fan) ** 0.5) if t.dim() >= 2 else t.uniform_(-0.1, 0.1)
R = cfg["vision_cfg"]["image_size"]
images = torch.randn(B, 3, R, R)
kw = dict(generation_type="top_p", top_p=0.9, fixed_output_length=True) if method == "top_p" else {}
kw["seq_len"] = int(sys.argv[6]) if len(sys.argv) > 6 else 30
V = cfg["text_cfg"].get("vocab_size", 49408)
if V < 49408:  # as bench_caption: the last two ids start and end
    kw.update(sot_token_id=V - 2, eos_token_id=V - 1)
with torch.no_grad():
    model.generate(images, **kw)
    t0 = time.perf_counter()
    model.generate(images, **kw)
    dt = time.perf_counter() - t0
print(f"PyTorch {torch.__version__} open_clip CoCa {name}, {threads} threads, batch {B}, {method}: "
      f"{1e3 * dt / B:.1f} ms/caption, {B / dt:.2f} captions/s")
