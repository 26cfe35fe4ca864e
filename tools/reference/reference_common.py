"""Shared pieces of the reference scripts in tools/reference/ (none is a build or test dependency):
importing the reference PyTorch code (apple/ml-mobileclip, open_clip at the pinned commit), the
project's deterministic weight rule (shared/golden/README.md section 1), and the custom MCi
image tower ("model_name": "mci") registered with timm as the reference's FastViT.
"""
import sys
import types
from functools import partial

import numpy as np

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for c in s.encode():
        h = ((h ^ c) * 0x100000001b3) & M64
    return h


def rule(name, n, lo, hi):
    """shared/golden/README.md section 1: n values in [lo, hi) from the tensor's name."""
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64)
        z = x + np.uint64(0x9e3779b97f4a7c15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24
    return (lo + (hi - lo) * u).astype(np.float32)


def import_open_clip(src):
    """open_clip's CoCa and CoCaLoss from a source tree (src/ of the pinned commit)."""
    sys.path.insert(0, src)
    from open_clip.coca_model import CoCa
    from open_clip.loss import CoCaLoss
    return CoCa, CoCaLoss


def import_mobileclip(src):
    """The reference CLIP class from an apple/ml-mobileclip checkout (open_clip stubbed: only its
    tokenizer would need it). Importing it registers mci0/mci1/mci2 with timm."""
    sys.path.insert(0, src)
    sys.modules.setdefault("open_clip", types.ModuleType("open_clip"))
    from mobileclip.clip import CLIP
    return CLIP


# FastViT keyword arguments a configuration's image_cfg may carry (config.h)
MCI_KWARGS = ("layers", "embed_dims", "mlp_ratios", "downsamples", "se_downsamples", "token_mixers",
              "repmixer_kernel_size", "drop_rate", "drop_path_rate")


def register_custom_mci(cfg):
    """A custom image tower ("model_name": "mci") registered with timm as the reference's FastViT
    called with the configuration's keyword arguments (the reference package must be importable)."""
    from timm.models import register_model
    from mobileclip.models.mci import FastViT, RepCPE
    img_cfg = cfg["image_cfg"]
    if img_cfg["model_name"] != "mci":
        return
    kw = {k: img_cfg[k] for k in MCI_KWARGS if k in img_cfg}
    kw["token_mixers"] = tuple(kw["token_mixers"])
    kw["pos_embs"] = [None if p is None else partial(RepCPE, spatial_shape=(7, 7))
                      for p in img_cfg.get("pos_embs") or [None] * len(kw["layers"])]

    @register_model
    def mci(pretrained=False, **kwargs):
        return FastViT(**kw, **kwargs)
