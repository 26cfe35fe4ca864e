#!/usr/bin/env python3
"""Loads a captioner written by `mobileclip train --config CAPTIONER.json` strictly into open_clip's
CoCa (7260a46) and prints its greedy caption tokens for a random image (a check the project's
tests cannot run: it needs PyTorch).

Usage (the throw-away environment of gen_coca_ref.py):
  /tmp/coca-venv/bin/python tools/reference/check_coca_train_torch.py /tmp/open_clip_7260a46/src \
      CAPTIONER.json OUT/model.pt
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import import_open_clip  # noqa: E402

CoCa, _ = import_open_clip(sys.argv[1])

with open(sys.argv[2]) as f:
    cfg = json.load(f)
cfg.pop("custom_text", None)
model = CoCa(**cfg).eval()
sd = torch.load(sys.argv[3], map_location="cpu")
missing, unexpected = model.load_state_dict(sd, strict=True)
print("strict load: ok,", len(sd), "tensors,", sum(t.numel() for t in sd.values()), "values")
R = cfg["vision_cfg"]["image_size"]
L = cfg["text_cfg"]["context_length"]
with torch.no_grad():
    img = torch.randn(2, 3, R, R, generator=torch.Generator().manual_seed(0))
    seq = model.generate(img, generation_type="top_k", top_k=1, seq_len=min(L, 12), fixed_output_length=True)
    print("greedy tokens", seq.tolist())
    assert torch.isfinite(model.encode_image(img)).all()
