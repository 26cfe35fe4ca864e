#!/usr/bin/env python3
"""Golden data for CoCa training (tests/test_coca_train.c): open_clip 7260a46's CoCa and CoCaLoss
on the tiny configuration and rule weights of gen_coca_ref.py (tests/data/coca/config.json and
params.tsv), PyTorch on CPU, one thread.

Usage (the throw-away environment of gen_coca_ref.py; not a build or test dependency):
  /tmp/coca-venv/bin/python tools/reference/gen_coca_train_ref.py /tmp/open_clip_7260a46/src tests/data/coca

Writes train_golden.safetensors:
  input.images [3,3,32,32], input.text [3,32] (rows with padding, one without)
  loss.clip, loss.caption     CoCaLoss(caption_loss_weight=2, clip_loss_weight=1) in float64
  grad.norm [P], grad.proj [P] per parameter (state-dict order, names in the metadata): the L2
      norm of the float64 gradient of clip + caption and its dot product with the direction
      rule("dir." + name, numel, -1, 1) (the weight rule's stream)
  grad.<name>                 the full gradient of a few small tensors
  steps.loss [3]              total loss before each of 3 AdamW steps (float32 model, lr 1e-3,
      wd 0.2 on open_clip main.py's decay group, betas (0.9, 0.98), eps 1e-6,
      clip_grad_norm_ 1.0, logit_scale.clamp_(0, ln 100) after each step)
  delta.norm [P], delta.proj [P]  the same summaries of (parameters after 3 steps - before)
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import import_open_clip, rule  # noqa: E402

CoCa, CoCaLoss = import_open_clip(sys.argv[1])
from safetensors.torch import save_file  # noqa: E402

OUT = sys.argv[2]
torch.set_num_threads(1)


with open(os.path.join(OUT, "config.json")) as f:
    CFG = json.load(f)
weights = {}
with open(os.path.join(OUT, "params.tsv")) as f:
    next(f)
    for line in f:
        name, _, shape, lo, hi = line.rstrip("\n").split("\t")
        shape = tuple(int(d) for d in shape.split(",")) if shape else ()
        n = int(np.prod(shape)) if shape else 1
        weights[name] = torch.from_numpy(rule(name, n, float(lo), float(hi)).reshape(shape))


def build(dtype):
    m = CoCa(**{k: v for k, v in CFG.items() if k != "custom_text"})
    m.load_state_dict(weights, strict=True)
    return m.to(dtype).train()


CTX, SOT, EOT = CFG["text_cfg"]["context_length"], 62, 63
g = torch.Generator().manual_seed(20261202)
images = torch.randn(3, 3, 32, 32, generator=g)
text = torch.zeros(3, CTX, dtype=torch.long)
t0 = [SOT, 5, 17, 33, 8, 41, 2, EOT]
text[0, : len(t0)] = torch.tensor(t0)
text[1] = torch.randint(1, SOT, (CTX,), generator=g)
text[1, 0], text[1, CTX - 1] = SOT, EOT
t2 = [SOT] + torch.randint(1, SOT, (20,), generator=g).tolist() + [EOT]
text[2, : len(t2)] = torch.tensor(t2)

loss_fn = CoCaLoss(caption_loss_weight=2.0, clip_loss_weight=1.0, pad_id=0)


def losses(model, imgs):
    fw = model(imgs, text)
    return loss_fn(fw["image_features"], fw["text_features"], fw["logits"], fw["labels"], fw["logit_scale"])


def direction(name, n):
    return torch.from_numpy(rule("dir." + name, n, -1.0, 1.0).astype(np.float64))


out = {"input.images": images, "input.text": text}
model = build(torch.float64)
clip_l, cap_l = losses(model, images.double())
(clip_l + cap_l).backward()
names = [n for n, _ in model.named_parameters()]
out["loss.clip"] = clip_l.detach().reshape(1)
out["loss.caption"] = cap_l.detach().reshape(1)
out["grad.norm"] = torch.stack([p.grad.norm() for _, p in model.named_parameters()])
out["grad.proj"] = torch.stack([(p.grad.reshape(-1) * direction(n, p.numel())).sum()
                                for n, p in model.named_parameters()])
FULL = ["logit_scale", "visual.attn_pool.query", "visual.attn_pool.ln_q.weight", "visual.class_embedding",
        "text.cls_emb", "text.ln_final.bias", "text_decoder.cross_attn.0.ln_1_kv.weight",
        "text_decoder.cross_attn.1.attn.in_proj_bias", "text_decoder.ln_final.weight"]
params = dict(model.named_parameters())
for n in FULL:
    out["grad." + n] = params[n].grad.detach().clone()
print("loss", clip_l.item(), cap_l.item())

# ---- three AdamW steps, float32, open_clip main.py's parameter groups and train.py's order ----
m32 = build(torch.float32)
excl = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
decay = [p for n, p in m32.named_parameters() if not excl(n, p)]
nodecay = [p for n, p in m32.named_parameters() if excl(n, p)]
opt = torch.optim.AdamW([{"params": nodecay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.2}],
                        lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
p0 = {n: p.detach().clone().double() for n, p in m32.named_parameters()}
step_loss = []
for _ in range(3):
    opt.zero_grad()
    c, k = losses(m32, images)
    total = c + k
    step_loss.append(total.item())
    total.backward()
    torch.nn.utils.clip_grad_norm_(m32.parameters(), 1.0, norm_type=2.0)
    opt.step()
    with torch.no_grad():
        m32.logit_scale.clamp_(0, math.log(100))
out["steps.loss"] = torch.tensor(step_loss, dtype=torch.float64)
deltas = {n: p.detach().double() - p0[n] for n, p in m32.named_parameters()}
out["delta.norm"] = torch.stack([deltas[n].norm() for n in names])
out["delta.proj"] = torch.stack([(deltas[n].reshape(-1) * direction(n, deltas[n].numel())).sum() for n in names])
print("steps", step_loss)

out = {k: v.contiguous() for k, v in out.items()}
save_file(out, os.path.join(OUT, "train_golden.safetensors"), metadata={"names": json.dumps(names)})
