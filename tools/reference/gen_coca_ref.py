#!/usr/bin/env python3
"""Golden data for the CoCa captioner (tests/test_coca.c): open_clip's CoCa at commit 7260a46
(the commit apple/ml-mobileclip training/README.md pins), a tiny configuration, weights from the
project's deterministic rule (shared/golden/README.md section 1), PyTorch on CPU, one thread.

Usage (throw-away environment; nothing here is a build or test dependency):
  apt-get install -y python3-torch python3-torchvision python3-numpy python3-pil
  python3 -m venv --system-site-packages /tmp/coca-venv
  /tmp/coca-venv/bin/pip install --no-deps transformers==4.49.0 tokenizers==0.21.4 \
      huggingface-hub==0.36.2 safetensors ftfy regex filelock fsspec packaging tqdm
  git --git-dir=<open_clip mirror> archive 7260a46 src/open_clip | tar -x -C /tmp/open_clip_7260a46
  /tmp/coca-venv/bin/python tools/reference/gen_coca_ref.py /tmp/open_clip_7260a46/src tests/data/coca

Writes config.json (open_clip's model-config schema), params.tsv (the weight table) and
golden.safetensors. The vocabulary is 64 ids with <start_of_text> = 62 and <end_of_text> = 63
passed to generate(), so that the end token and the pad id 0 are reached within a few steps and
every branch of the searches (finished beams, early stops, padding) is exercised.
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

VOCAB, SOT, EOT, CTX = 64, 62, 63, 32
CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "layers": 2, "width": 96, "head_width": 32,
                   "attentional_pool": True, "attn_pooler_queries": 9, "attn_pooler_heads": 4,
                   "output_tokens": True},
    "text_cfg": {"context_length": CTX, "vocab_size": VOCAB, "width": 64, "heads": 4, "layers": 2,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": CTX, "vocab_size": VOCAB, "width": 64, "heads": 4, "layers": 2,
                       "attn_pooler_heads": 4},
    "custom_text": True,
}

# ---- the weight rule ----


def f32(x):
    return float(np.float32(x))


def a(n):
    return f32(math.sqrt(3.0 / n))


def weight_range(name, shape):
    last = name.rsplit(".", 1)[-1]
    if name == "logit_scale":
        v = math.log(1 / 0.07)
        return v, v
    if ".ln_" in name or name.startswith("ln_") or "ln_final" in name or "ln_pre" in name or "ln_post" in name:
        return (0.5, 1.5) if last == "weight" else (-f32(0.1), f32(0.1))
    if last in ("bias", "in_proj_bias"):
        return -f32(0.1), f32(0.1)
    if last in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
        g = f32(2 * a(shape[1]))
        return -g, g
    if name.endswith("token_embedding.weight") or last in ("class_embedding", "cls_emb", "query"):
        return -0.5, 0.5
    if last == "positional_embedding":
        return -f32(0.1), f32(0.1)
    if name == "visual.conv1.weight":
        fan = shape[1] * shape[2] * shape[3]
        return -a(fan), a(fan)
    if last in ("proj", "text_projection"):  # x @ P
        return -a(shape[0]), a(shape[0])
    if last == "weight" and len(shape) == 2:  # nn.Linear
        return -a(shape[1]), a(shape[1])
    raise ValueError(f"no range for {name} {shape}")


model = CoCa(**{k: v for k, v in CFG.items() if k != "custom_text"})  # the factory pops it
model.eval()
sd = model.state_dict()
rows = ["name\tdtype\tshape\tlo\thi"]
new = {}
for name, t in sd.items():
    lo, hi = weight_range(name, tuple(t.shape))
    lo32, hi32 = f32(lo), f32(hi)
    if name != "logit_scale":
        assert lo32 == lo and hi32 == hi, name
    new[name] = torch.from_numpy(rule(name, t.numel(), lo, hi).reshape(tuple(t.shape)))
    rows.append(f"{name}\tf32\t{','.join(str(d) for d in t.shape)}\t{lo:.17g}\t{hi:.17g}")
model.load_state_dict(new, strict=True)

g = torch.Generator().manual_seed(20261201)
images = torch.randn(3, 3, 32, 32, generator=g)
text = torch.zeros(2, CTX, dtype=torch.long)
t0 = [SOT, 5, 17, 33, 8, 41, 2, EOT]
text[0, : len(t0)] = torch.tensor(t0)
text[1] = torch.randint(1, SOT, (CTX,), generator=g)
text[1, 0] = SOT
text[1, CTX - 1] = EOT

out = {"input.images": images, "input.text": text}
with torch.no_grad():
    img_f, img_tok = model._encode_image(images, normalize=False)
    out["image_features"] = img_f
    out["image_tokens"] = img_tok
    out["text_features"] = model.encode_text(text, normalize=False)
    fw = model(images[:2], text)  # teacher forcing: logits [2, CTX-1, V] for text[:, :-1]
    out["logits"] = fw["logits"]
    loss = CoCaLoss(caption_loss_weight=2.0, clip_loss_weight=1.0, pad_id=0)
    clip_l, cap_l = loss(fw["image_features"], fw["text_features"], fw["logits"], fw["labels"], fw["logit_scale"])
    out["loss.clip"] = clip_l.reshape(1)
    out["loss.caption"] = cap_l.reshape(1)

    cases = {
        "greedy": dict(generation_type="top_k", top_k=1),
        "greedy_fixed": dict(generation_type="top_k", top_k=1, fixed_output_length=True),
        "greedy_rep": dict(generation_type="top_k", top_k=1, repetition_penalty=1.5, min_seq_len=8),
        "greedy_short": dict(generation_type="top_k", top_k=1, seq_len=9, min_seq_len=3),
        "beam": dict(generation_type="beam_search"),
        "beam_fixed": dict(generation_type="beam_search", fixed_output_length=True),
        "beam_4x2": dict(generation_type="beam_search", num_beams=4, num_beam_groups=2, min_seq_len=7),
        "beam_rep": dict(generation_type="beam_search", repetition_penalty=1.5, seq_len=12),
        # id 45 is the greedy favourite: as the end id it ends hypotheses early and often
        "greedy_eot45": dict(generation_type="top_k", top_k=1, eos_token_id=45),
        "beam_eot45": dict(generation_type="beam_search", eos_token_id=45),
        "beam_eot45_4x2": dict(generation_type="beam_search", eos_token_id=45, num_beams=4, num_beam_groups=2,
                               min_seq_len=3),
        "beam_eot45_2x1": dict(generation_type="beam_search", eos_token_id=45, num_beams=2, num_beam_groups=1),
        # a strong repetition penalty lowers the running sums: finished hypotheses win, groups end early
        "beam_rep50": dict(generation_type="beam_search", repetition_penalty=50.0),
        "beam_rep50_eot45": dict(generation_type="beam_search", repetition_penalty=50.0, eos_token_id=45),
        "beam_rep50_4x4": dict(generation_type="beam_search", repetition_penalty=50.0, num_beams=4,
                               num_beam_groups=4, min_seq_len=2, seq_len=20),
    }
    meta = {}
    for k, kw in cases.items():
        kw = dict({"eos_token_id": EOT}, **kw)
        seq = model.generate(images, sot_token_id=SOT, **kw)
        out["gen." + k] = seq.to(torch.int64)
        meta[k] = {kk: v for kk, v in kw.items()}
        print(k, seq.tolist())

out = {k: v.contiguous() for k, v in out.items()}
os.makedirs(OUT, exist_ok=True)
save_file(out, os.path.join(OUT, "golden.safetensors"), metadata={"cases": json.dumps(meta)})
with open(os.path.join(OUT, "params.tsv"), "w") as f:
    f.write("\n".join(rows) + "\n")
with open(os.path.join(OUT, "config.json"), "w") as f:
    json.dump(CFG, f, indent=2)
    f.write("\n")
print("image_features", img_f[0, :4].tolist(), "loss", clip_l.item(), cap_l.item())

# ---- decoding and DataCompDR's caption post-processing (scripts/gen.py) ----
from open_clip.tokenizer import SimpleTokenizer, decode  # noqa: E402

tok = SimpleTokenizer()
EOT_S, SOT_S = "<end_of_text>", "<start_of_text>"
g2 = torch.Generator().manual_seed(7)
seqs = [
    tok.encode("a photo of a cat. sitting on a mat"),
    [49406] + tok.encode("two dogs  play in the snow ") + [49407, 0, 0, 0],
    [49406, 49406] + tok.encode("déjà vu, naïve café 東京 🙂.") + [49407] + tok.encode("after end"),
    [49406] + [0xC3 - 0x21 if False else 0] + [49407],
    [49406, 94, 95, 96, 97, 98, 160, 161, 187, 188, 200, 255, 256, 300, 49407],  # lone / broken UTF-8 bytes
    [49406, 269, 49407],  # "." right away: an empty caption
]
seqs += [[49406] + torch.randint(0, 49406, (28,), generator=g2).tolist() + [49407] for _ in range(12)]
dec_cases = []
for s in seqs:
    text = decode(torch.tensor(s))
    cap = text.split(EOT_S)[0].split(SOT_S)[-1].split(".")[0].rstrip()
    dec_cases.append({"ids": s, "decoded": text, "caption": cap})
with open(os.path.join(OUT, "decode_cases.json"), "w") as f:
    json.dump(dec_cases, f, ensure_ascii=True, indent=0)
    f.write("\n")

# ---- the full-size configurations' state-dict names and shapes (loading real checkpoints) ----
for full in ("coca_ViT-B-32", "coca_ViT-L-14"):
    with open(os.path.join(sys.argv[1], "open_clip", "model_configs", full + ".json")) as f:
        fc = json.load(f)
    fc.pop("custom_text", None)
    big = CoCa(**fc)
    with open(os.path.join(OUT, full + ".names.tsv"), "w") as f:
        for name, t in big.state_dict().items():
            f.write(f"{name}\t{','.join(str(d) for d in t.shape)}\n")
    del big
