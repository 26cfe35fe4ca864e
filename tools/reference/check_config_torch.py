#!/usr/bin/env python3
"""Manual cross-check (not part of the build or the tests): a model configuration JSON is
built with the reference PyTorch classes and a checkpoint written by mobileclip.c is loaded
into it strictly; the embeddings of the reference and of `mobileclip embed` must agree.

    build/make_test_checkpoint tests/data/configs/tiny_mci.json /tmp/tiny.pt
    python3 tools/reference/check_config_torch.py --mobileclip-src ML_MOBILECLIP_CHECKOUT \
        --config tests/data/configs/tiny_mci.json --checkpoint /tmp/tiny.pt \
        --cli build/mobileclip --vocab ../shared/vocab/bpe_simple_vocab_16e6.txt.gz \
        --image ../shared/images/chelsea.png --text "a photo of a cat"

Needs torch (Debian's python3-torch 1.13 works), timm (a venv with --system-site-packages and
`pip install --no-deps timm`), PIL and numpy, and a checkout of apple/ml-mobileclip. A custom
image tower ("model_name": "mci") is registered with timm as the reference's FastViT called
with the configuration's keyword arguments, exactly as mci0/mci1/mci2 call it.
"""
import argparse, json, os, subprocess, sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import import_mobileclip, register_custom_mci  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mobileclip-src", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--text", required=True)
    a = ap.parse_args()

    CLIP = import_mobileclip(a.mobileclip_src)

    cfg = json.load(open(a.config))
    register_custom_mci(cfg)
    model = CLIP(cfg)
    sd = torch.load(a.checkpoint, map_location="cpu")
    missing, unexpected = model.load_state_dict(sd, strict=True)
    print(f"strict load: ok ({len(sd)} tensors, {sum(v.numel() for v in sd.values())} values)")
    model.eval()

    # preprocessing as open_clip's val transform without normalisation (what mobileclip.c does)
    R = cfg["image_cfg"]["image_size"]
    im = Image.open(a.image).convert("RGB")
    w, h = im.size
    # torchvision Resize(R): the short side to R, the long side int(R * long / short)
    nw, nh = (R, int(R * h / w)) if w <= h else (int(R * w / h), R)
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - R) / 2.0)), int(round((nh - R) / 2.0))
    im = im.crop((left, top, left + R, top + R))
    x = torch.from_numpy(np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0)[None]

    T = cfg["text_cfg"]["context_length"]
    ids = json.loads(subprocess.check_output([a.cli, "tokenize", "--vocab", a.vocab, "--context", str(T), a.text]))
    tok = torch.tensor([ids], dtype=torch.long)
    with torch.no_grad():
        ref_img = model.encode_image(x)[0].numpy()
        ref_txt = model.encode_text(tok)[0].numpy()

    res = {}
    for form in ([], ["--training-form"]):
        out = subprocess.check_output([a.cli, "embed", "--config", a.config, "--checkpoint", a.checkpoint,
                                       "--vocab", a.vocab, "--image", a.image, "--text", a.text, "--raw"] + form)
        rows = [json.loads(l)["embedding"] for l in out.decode().splitlines()]
        for kind, ours, ref in (("image", rows[0], ref_img), ("text", rows[1], ref_txt)):
            ours = np.asarray(ours, dtype=np.float64)
            cos = float(ours @ ref / (np.linalg.norm(ours) * np.linalg.norm(ref)))
            rel = float(np.abs(ours - ref).max() / np.abs(ref).max())
            name = f"{kind} {'training form' if form else 'reparameterized'}"
            res[name] = (cos, rel)
            print(f"{name:22s} cosine {cos:.8f}  max rel err {rel:.2e}")
    ok = all(c >= 0.9999 for c, _ in res.values())
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
