#!/usr/bin/env python3
"""PyTorch CPU reference for bench_train_step (not part of the build or the tests): one training
step of the reference model (apple/ml-mobileclip CLIP(cfg), unreparameterized, train mode) on
random data of the same shapes, with the DR loss of open_clip_v2.patch (DRClipLoss, lambda 1,
two 768-d teachers at scale 100, average after softmax; lambda 0 / plain CLIP by --mode) as a
direct transcription of its formulas, backward, clip_grad_norm_(1.0), AdamW (betas 0.9/0.95,
wd 0.2 with open_clip's exclusion groups), logit-scale clamp. Prints the median wall and CPU
time per step like bench_train_step.

    python3 bench/torch_train_step.py --mobileclip-src ML_MOBILECLIP_CHECKOUT --arch s0 \
        --batch 32 --threads 2 --steps 2 --warmup 1 [--mode dr|dr0|clip]

Needs torch (Debian's python3-torch 1.13: `apt-get install python3-torch`), timm (a venv with
--system-site-packages and `pip install --no-deps timm`) and a checkout of apple/ml-mobileclip.
bench/train_vs_torch.sh runs both programs and prints the ratio.
"""
import argparse, json, os, resource, sys, time, types

import torch
import torch.nn.functional as F


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def dr_loss(x, ys, u, vs, s, lam, teachers=(768, 768), tscale=100.0):
    """DRClipLoss, world size 1: sum over caption sets of (1-lam) CLIP + lam distill."""
    total = 0.0
    labels = torch.arange(x.shape[0])
    for k, y in enumerate(ys):
        a = s * x @ y.t()
        bt = s * y @ x.t()
        clip = (F.cross_entropy(a, labels) + F.cross_entropy(bt, labels)) / 2
        if lam > 0 or u is not None:
            v = vs[k]
            pa, pb, at = 0, 0, 0
            for w in teachers:
                uk, vk = u[:, at:at + w], v[:, at:at + w]
                pa = pa + (tscale * uk @ vk.t()).softmax(1) / len(teachers)
                pb = pb + (tscale * vk @ uk.t()).softmax(1) / len(teachers)
                at += w
            dist = (-(pa * a.log_softmax(1)).sum(1).mean() - (pb * bt.log_softmax(1)).sum(1).mean()) / 2
            total = total + (1 - lam) * clip + lam * dist
        else:
            total = total + clip
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mobileclip-src", required=True)
    ap.add_argument("--arch", default="s0")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--mode", default="dr", choices=["dr", "dr0", "clip"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sys.path.insert(0, a.mobileclip_src)
    sys.modules.setdefault("open_clip", types.ModuleType("open_clip"))
    from mobileclip.clip import CLIP
    cfg = json.load(open(os.path.join(a.mobileclip_src, "mobileclip", "configs", f"mobileclip_{a.arch}.json")))
    model = CLIP(cfg).train()
    B, R, T = a.batch, cfg["image_cfg"]["image_size"], cfg["text_cfg"]["context_length"]
    ns = 1 if a.mode == "clip" else 2
    images = torch.rand(B, 3, R, R)
    tok = torch.zeros(ns * B, T, dtype=torch.long)
    for n in range(ns * B):
        ln = int(torch.randint(5, T - 2, ()))
        tok[n, 0], tok[n, 1:ln], tok[n, ln] = 49406, torch.randint(1, 40000, (ln - 1,)), 49407
    u = F.normalize(torch.randn(B, 2, 768), dim=-1).reshape(B, 1536) if ns == 2 else None
    v = F.normalize(torch.randn(2 * B, 2, 768), dim=-1).reshape(2 * B, 1536) if ns == 2 else None
    lam = 1.0 if a.mode == "dr" else 0.0
    # open_clip main.py groups
    excl = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    named = list(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for n, p in named if excl(n, p)], "weight_decay": 0.0},
                             {"params": [p for n, p in named if not excl(n, p)], "weight_decay": 0.2}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    walls, cpus = [], []
    for i in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), cpu_seconds()
        opt.zero_grad()
        out = model(images, tok)
        x, y, s = (out["image_features"], out["text_features"], out["logit_scale"]) if isinstance(out, dict) else out
        ys = [y[:B], y[B:]] if ns == 2 else [y]
        vs = [v[:B], v[B:]] if ns == 2 else None
        loss = dr_loss(x, ys, u, vs, s, lam)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)
        if i >= a.warmup:
            walls.append(time.perf_counter() - t0)
            cpus.append(cpu_seconds() - c0)
    walls.sort()
    cpus.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {a.mode} batch {B}: step {walls[len(walls) // 2]:.3f} s wall, {cpus[len(cpus) // 2]:.3f} s CPU "
          f"(median of {a.steps}), {B / walls[len(walls) // 2]:.2f} samples/s, loss {loss.item():.4f}, "
          f"peak RSS {peak:.0f} MB, torch {torch.__version__}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
