#!/usr/bin/env python3
"""Manual check (not part of the build or the tests): the dropout and stochastic-depth keys that
mobileclip.c reads from a model configuration (src/models/config.h, models/dropout_rates.h) are
the reference's own names, with the meaning the C code gives them.

  (a) the official CLIP(cfg) builds from configurations that carry every key (S0 with image and
      text rates, the tiny custom MCi of tests/data/configs, B with ViT rates); it applies only
      text_cfg.embed_dropout itself (its MCi, vit_b16 and TextTransformer build their towers
      with the default rates), so (b) builds the modules each key is named after;
  (b) where the reference builds a module from a key, that module holds the rate:
      - text_cfg.embed_dropout: TextTransformer.embedding_dropout.p (read by CLIP(cfg) itself);
      - image_cfg.drop_rate / drop_path_rate: FastViT's keyword arguments (timm.create_model("mci0",
        ...) and the custom "mci" tower): every ConvFFN's Dropout p, and block j of n a DropPath of
        drop_path_rate * j / (n - 1) (the schedule mci_train.c applies);
      - text_cfg / ViT dropout, attn_dropout, ffn_dropout, stochastic_dropout: TransformerEncoder's
        arguments (after out_proj and fc2, the attention probabilities, after the GELU, the
        residual branches), the ViT's round(linspace(0, rate, depth), 3) per layer (vit_train.c);
  (c) TransformerEncoder refuses dropout together with stochastic_dropout (so does the C parser).

    python3 tools/reference/check_dropout_config_torch.py --mobileclip-src ML_MOBILECLIP_CHECKOUT

Needs torch, torchvision, timm and a checkout of apple/ml-mobileclip. Prints each check and PASS/FAIL.
"""
import argparse, copy, json, os, sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from reference_common import import_mobileclip, register_custom_mci  # noqa: E402

TEXT_RATES = {"embed_dropout": 0.05, "dropout": 0.1, "attn_dropout": 0.15, "ffn_dropout": 0.2}
FAILS = []


def check(what, ok):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        FAILS.append(what)


def rates_of(module, cls):
    return [m for m in module.modules() if isinstance(m, cls)]


def check_mci(tower, drop, drop_path, label):
    from timm.layers import DropPath
    from mobileclip.models.mci import ConvFFN
    ffn = rates_of(tower, ConvFFN)
    check(f"{label}: {len(ffn)} ConvFFN dropouts at drop_rate {drop}", len(ffn) > 0 and all(f.drop.p == drop for f in ffn))
    blocks = [m for m in tower.modules() if hasattr(m, "convffn")]
    n = len(blocks)
    want = [drop_path * j / (n - 1) for j in range(n)]
    got = [b.drop_path.drop_prob if isinstance(b.drop_path, DropPath) else 0.0 for b in blocks]
    check(f"{label}: DropPath of block j = drop_path_rate * j / (n - 1) over {n} blocks (last {got[-1]:.4f})",
          np.allclose(got, want, rtol=0, atol=1e-12))


def check_transformer(layers, dropout, attn, ffn, stochastic, label):
    ok = True
    for i, l in enumerate(layers):
        mha, post, f = l.pre_norm_mha[1], l.pre_norm_mha[2], l.pre_norm_ffn
        sd = l.drop_path.p if hasattr(l.drop_path, "p") else 0.0
        ok &= post.p == dropout and f[5].p == dropout and f[3].p == ffn and mha.attn_dropout.p == attn
        ok &= abs(sd - stochastic[i]) < 1e-12
    check(f"{label}: {len(layers)} TransformerEncoders with dropout {dropout}, attn_dropout {attn}, ffn_dropout {ffn}, "
          f"stochastic depth {stochastic[0]}..{stochastic[-1]}", ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mobileclip-src", required=True)
    a = ap.parse_args()
    CLIP = import_mobileclip(a.mobileclip_src)
    from mobileclip.modules.common.transformer import TransformerEncoder
    import timm

    s0 = json.load(open(os.path.join(a.mobileclip_src, "mobileclip", "configs", "mobileclip_s0.json")))
    # (a) + (b), S0: image rates (FastViT kwargs, ignored by CLIP's MCi), text rates
    cfg = copy.deepcopy(s0)
    cfg["image_cfg"].update(drop_rate=0.1, drop_path_rate=0.2)
    cfg["text_cfg"].update(TEXT_RATES)
    m = CLIP(cfg)
    check("S0 + image_cfg.drop_rate/drop_path_rate + text_cfg rates: CLIP(cfg) builds", True)
    check(f"text_cfg.embed_dropout -> TextTransformer.embedding_dropout.p = {m.text_encoder.embedding_dropout.p}",
          m.text_encoder.embedding_dropout.p == TEXT_RATES["embed_dropout"])
    tower = timm.create_model("mci0", drop_rate=0.1, drop_path_rate=0.2)
    check_mci(tower, 0.1, 0.2, "mci0(drop_rate=0.1, drop_path_rate=0.2)")
    # the text tower's TransformerEncoder with the text_cfg keys as its arguments
    layers = [TransformerEncoder(embed_dim=64, ffn_latent_dim=128, num_heads=2, dropout=0.1, attn_dropout=0.15,
                                 ffn_dropout=0.2) for _ in range(2)]
    check_transformer(layers, 0.1, 0.15, 0.2, [0.0, 0.0], "text_cfg dropout / attn_dropout / ffn_dropout")
    sd = TransformerEncoder(embed_dim=64, ffn_latent_dim=128, num_heads=2, stochastic_dropout=0.3)
    check_transformer([sd], 0.0, 0.0, 0.0, [0.3], "text_cfg stochastic_dropout")
    # (c)
    try:
        TransformerEncoder(embed_dim=64, ffn_latent_dim=128, num_heads=2, dropout=0.1, stochastic_dropout=0.1)
        refused = False
    except SystemExit:
        refused = True
    check("dropout + stochastic_dropout: TransformerEncoder refuses (mutually exclusive)", refused)

    # the tiny custom MCi: FastViT(**image_cfg) with the rates
    tiny = json.load(open(os.path.join(ROOT, "tests", "data", "configs", "tiny_mci.json")))
    tiny["image_cfg"].update(drop_rate=0.25, drop_path_rate=0.5)
    tiny["text_cfg"].update(TEXT_RATES)
    register_custom_mci(tiny)
    CLIP(tiny)
    check("tiny custom MCi + rates: CLIP(cfg) builds", True)
    check_mci(timm.create_model("mci"), 0.25, 0.5, "custom mci FastViT(**image_cfg)")

    # B: ViT keys are the reference VisionTransformer's configuration keys
    from mobileclip.models.vit import VisionTransformer
    b = json.load(open(os.path.join(a.mobileclip_src, "mobileclip", "configs", "mobileclip_b.json")))
    b["image_cfg"].update(attn_dropout=0.05, ffn_dropout=0.1, stochastic_dropout=0.2)
    b["text_cfg"].update(TEXT_RATES)
    CLIP(b)
    check("B + image_cfg ViT rates + text_cfg rates: CLIP(cfg) builds", True)
    vcfg = {"norm_layer": "layer_norm_fp32", "act_layer": "gelu", "embed_dim": 768, "n_transformer_layers": 12,
            "n_attn_heads": 12, "attn_dropout": 0.05, "ffn_dropout": 0.1, "stochastic_dropout": 0.2}
    vit = VisionTransformer(cfg=vcfg)
    want = [float(np.round(x, 3)) for x in np.linspace(0, 0.2, 12)]  # vit_train.c: nearbyint(1000 r i / 11) / 1000
    c_rule = [float(np.rint(1000.0 * 0.2 * i / 11) / 1000.0) for i in range(12)]
    check("ViT stochastic depth per layer: the C rule gives the reference's rounded linspace", want == c_rule)
    check_transformer(list(vit.transformer), 0.0, 0.05, 0.1, want, "vit_b16 cfg attn_dropout / ffn_dropout / stochastic_dropout")
    print("PASS" if not FAILS else f"FAIL ({len(FAILS)})")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
