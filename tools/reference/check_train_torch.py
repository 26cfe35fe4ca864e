#!/usr/bin/env python3
"""Manual end-to-end check of `mobileclip train` against the reference (not part of the build or
the tests; the "check the project never sees" of the training issue, reproduced):

  (a) writes small reinforced shards with PyTorch and the reference's own code path: the
      reference's reproducible augmentations (apple/ml-mobileclip training/dr/transforms.py,
      compose_from_config on the DataCompDR-12M image_augmentation config at the student's
      size) give each stored augmentation and its compressed parameters (paug.json); a PyTorch
      teacher (the reference CLIP(cfg) of the configuration, seeded) embeds every augmented image
      (image_emb) and the real + synthetic captions (text_emb, syn_text_emb), each pulled towards
      a random direction of its photo (an untrained teacher alone gives uniform targets); images
      are crops of the project's photos, captions name the photo;
  (b) runs `mobileclip train` on them: a few hundred steps of a small JSON configuration
      (the loss must go down) and a short S0 run;
  (c) loads each DIR/model.pt strictly with the official CLIP(cfg) and
  (d) compares its embeddings with `mobileclip embed` (folded and training form): cosine >=
      0.9999 (tools/reference/check_config_torch.py does (c) and (d)).

    python3 tools/reference/check_train_torch.py --mobileclip-src ML_MOBILECLIP_CHECKOUT \
        --cli build/mobileclip --shared ../shared --out /tmp/ctt [--steps 300] [--s0-steps 3]

Needs torch and torchvision (Debian's python3-torch 1.13 / python3-torchvision 0.14), timm (a
venv with --system-site-packages and `pip install --no-deps timm`), PIL and numpy, and a checkout
of apple/ml-mobileclip. Prints the figures and PASS/FAIL.
"""
import argparse, io, json, os, subprocess, sys, tarfile, time, types

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from reference_common import import_mobileclip, register_custom_mci  # noqa: E402


def reference_modules(src):
    """The reference's CLIP and its DR transforms (training/dr imports itself as open_clip_train.dr)."""
    CLIP = import_mobileclip(src)  # (registers mci0/1/2 with timm)
    import importlib.util
    pkg = types.ModuleType("open_clip_train")
    pkg.__path__ = []
    dr = types.ModuleType("open_clip_train.dr")
    dr.__path__ = [os.path.join(src, "training", "dr")]
    sys.modules["open_clip_train"], sys.modules["open_clip_train.dr"] = pkg, dr
    for name in ("transforms_base", "transforms"):
        spec = importlib.util.spec_from_file_location(f"open_clip_train.dr.{name}",
                                                      os.path.join(src, "training", "dr", f"{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    return CLIP, sys.modules["open_clip_train.dr.transforms"]


def build_model(CLIP, cfg, seed):
    register_custom_mci(cfg)
    torch.manual_seed(seed)
    m = CLIP(cfg)
    with torch.no_grad():  # the reference leaves the text projection uninitialised (torch.empty)
        p = m.text_encoder.projection_layer
        p.normal_(0, p.shape[0] ** -0.5)
    return m.eval()


def tokenize(cli, texts, T):
    out = subprocess.check_output([cli, "tokenize", "--context", str(T), "--"] + texts)
    return torch.tensor([json.loads(l) for l in out.decode().splitlines()], dtype=torch.long)


def write_shards(a, cfg, teacher, tr, n_shards, per_shard, n_aug=3):
    """(a): DataCompDR-layout shards; returns the teacher width."""
    names = sorted(f for f in os.listdir(os.path.join(a.shared, "images")) if f.endswith((".png", ".jpg")))
    names = [n for n in names if not n.startswith("synthetic")]
    R, T = cfg["image_cfg"]["image_size"], cfg["text_cfg"]["context_length"]
    aug_cfg = {"normalize": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
               "rand_augment": {"enable": True, "p": 1.0},
               "random_resized_crop": {"interpolation": "bicubic", "size": R},
               "to_rgb": {"enable": True}, "to_tensor": {"enable": True}}
    aug_cfg.pop("to_rgb")  # not one of the reference's transforms (its images are RGB already)
    transform = tr.compose_from_config(aug_cfg)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    os.makedirs(a.out, exist_ok=True)
    dim = cfg["embed_dim"]
    cls_dir = torch.nn.functional.normalize(torch.randn(len(names), dim, generator=torch.Generator().manual_seed(5)), dim=-1)
    for s in range(n_shards):
        path = os.path.join(a.out, "shards", f"{s:04d}.tar")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
            for k in range(per_shard):
                cls = int(rng.integers(len(names)))
                label = os.path.splitext(names[cls])[0].replace("_", " ")
                src = Image.open(os.path.join(a.shared, "images", names[cls])).convert("RGB")
                w, h = src.size  # a random crop of the photo, at most 320 px
                cw, ch = int(w * rng.uniform(0.5, 1)), int(h * rng.uniform(0.5, 1))
                x0, y0 = int(rng.integers(w - cw + 1)), int(rng.integers(h - ch + 1))
                im = src.crop((x0, y0, x0 + cw, y0 + ch))
                im.thumbnail((320, 320))
                real = f"a photo of the {label}"
                syn = [f"an image of a {label}", f"the {label}, close up", f"a picture showing the {label}"]
                augs, params = [], []
                for _ in range(n_aug):
                    x, p = transform(im)
                    augs.append(x)
                    params.append(transform.compress(p))
                with torch.no_grad():
                    ie = teacher.encode_image(torch.stack(augs))
                    te = teacher.encode_text(tokenize(a.cli, [real] + syn, T))
                # an untrained teacher's embeddings are nearly one direction (uniform targets, nothing
                # to learn): each is pulled towards its photo's direction, so the targets name the photo
                ie = torch.nn.functional.normalize(torch.nn.functional.normalize(ie, dim=-1) + 2 * cls_dir[cls], dim=-1)
                te = torch.nn.functional.normalize(torch.nn.functional.normalize(te, dim=-1) + 2 * cls_dir[cls], dim=-1)
                ie, te = ie.numpy().astype(np.float32), te.numpy().astype(np.float32)
                buf = io.BytesIO()
                np.savez(buf, image_emb=ie, text_emb=te[:1], syn_text_emb=te[1:])
                jpg = io.BytesIO()
                im.save(jpg, "JPEG", quality=90)
                key = f"{s:04d}_{k:05d}"
                members = {"jpg": jpg.getvalue(), "txt": real.encode(),
                           "syn.json": json.dumps({"syn_text": syn}).encode(),
                           "paug.json": json.dumps({"param_aug": params}).encode(), "npz": buf.getvalue(),
                           "json": json.dumps({"uid": key, "label": label}).encode()}
                for ext in sorted(members):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mtime = len(members[ext]), 0
                    tf.addfile(info, io.BytesIO(members[ext]))
    return dim


def train(a, out, model_args, dim, steps, batch, extra=()):
    cmd = [a.cli, "train", "--data", os.path.join(a.out, "shards", f"{{0000..{a.shards - 1:04d}}}.tar"), *model_args,
           "--teacher-dims", str(dim), "--teacher-scale", "100", "--batch", str(batch), "--steps", str(steps),
           "--threads", str(a.threads), "--seed", "0", "--out", out, *extra]
    t0 = time.time()
    r = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    print(f"  {' '.join(cmd[1:])}\n  exit {r.returncode} in {time.time() - t0:.0f} s")
    if r.returncode not in (0, 3):
        print(r.stderr[-2000:])
        return None
    rows = [l.split(",") for l in open(os.path.join(out, "log.csv")).read().splitlines()[1:]]
    return np.array([float(r[3]) for r in rows])


def check_embed(a, out, cfg_path):
    """(c) + (d): strict load with CLIP(cfg), embeddings against `mobileclip embed`."""
    cmd = [sys.executable, os.path.join(HERE, "check_config_torch.py"), "--mobileclip-src", a.mobileclip_src,
           "--config", cfg_path, "--checkpoint", os.path.join(out, "model.pt"), "--cli", a.cli,
           "--vocab", os.path.join(a.shared, "vocab", "bpe_simple_vocab_16e6.txt.gz"),
           "--image", os.path.join(a.shared, "images", "chelsea.png"), "--text", "a photo of the chelsea"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    print("\n".join("  " + l for l in (r.stdout + r.stderr).strip().splitlines() if "arn" not in l))
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mobileclip-src", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default=os.path.join(ROOT, "tests", "data", "configs", "tiny_mci.json"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--s0-steps", type=int, default=3)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--per-shard", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    a.cli = os.path.abspath(a.cli)
    CLIP, tr = reference_modules(a.mobileclip_src)
    cfg = json.load(open(a.config))
    teacher = build_model(CLIP, cfg, seed=1)
    t0 = time.time()
    dim = write_shards(a, cfg, teacher, tr, a.shards, a.per_shard)
    print(f"(a) {a.shards} x {a.per_shard} reinforced samples (3 augmentations, 3 synthetic captions, "
          f"teacher width {dim}) in {time.time() - t0:.0f} s")
    ok = True
    print(f"(b) {a.steps} steps of {os.path.basename(a.config)}, batch {a.batch}")
    out = os.path.join(a.out, "tiny")
    loss = train(a, out, ["--config", a.config], dim, a.steps, a.batch, ["--lr", "2e-3", "--warmup", "20", "--lambda", "0.7"])
    if loss is None:
        return 1
    n = max(1, min(20, len(loss) // 5))
    first, last = loss[:n].mean(), loss[-n:].mean()
    down = last < 0.8 * first
    print(f"  loss: first {n} steps {first:.4f}, last {n} steps {last:.4f} ({last / first:.2f}x): {'ok' if down else 'NOT DOWN'}")
    ok &= down
    print("(c, d) strict load + embeddings, the small configuration")
    ok &= check_embed(a, out, os.path.join(out, "config.json"))
    if a.s0_steps:
        print(f"(b) {a.s0_steps} steps of S0, batch 4")
        out0 = os.path.join(a.out, "s0")
        l0 = train(a, out0, ["--arch", "s0"], dim, a.s0_steps, 4, ["--lr", "1e-4"])
        ok &= l0 is not None and bool(np.isfinite(l0).all())
        print("(c, d) strict load + embeddings, S0")
        ok &= check_embed(a, out0, os.path.join(out0, "config.json"))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
