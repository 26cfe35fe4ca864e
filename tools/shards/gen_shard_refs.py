#!/usr/bin/env python3
"""Reference files for tests/test_wds.c, test_npy.c and test_webp (tests/data/shards/).

Run once in a throw-away venv (never by the build or the tests):
    python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy webdataset braceexpand pillow
    /tmp/v/bin/python tools/shards/gen_shard_refs.py tests/data/shards

Writes:
  wds_*.tar + .expected.json   tar shards (webdataset's TarWriter, tarfile GNU/pax formats,
                               global pax headers) and the samples webdataset itself yields
                               for them (tar_file_expander + group_by_keys), as
                               [{"key", "members": {ext: hex of the bytes}}]
  names.json                   base_plus_ext and the skip_meta tests for tricky names
  brace.json                   braceexpand.braceexpand for a list of patterns (or "error")
  npy_*.npy + npy.json         np.save / format.write_array of every dtype and version;
                               npy.json gives dtype, shape and the values as doubles
  emb_*.npz + npz.json         np.savez / np.savez_compressed embeddings and their values
  *.webp + .rgb                Pillow-written WebP images and Image.open().convert('RGB') bytes
"""
import io
import json
import os
import re
import sys
import tarfile

import braceexpand
import numpy as np
import webdataset as wds
from PIL import Image
from webdataset import tariterators

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def wds_samples(path):
    """The samples webdataset yields for a shard (errors re-raised)."""
    src = [dict(url=path, stream=open(path, "rb"))]
    files = tariterators.tar_file_expander(src)
    res = []
    for s in tariterators.group_by_keys(files):
        res.append({"key": s["__key__"], "members": {k: v.hex() for k, v in s.items() if not k.startswith("__")}})
    return res


def save_expected(name):
    path = os.path.join(out, name)
    with open(path + ".expected.json", "w") as f:
        json.dump(wds_samples(path), f, indent=1, sort_keys=True)


# 1. webdataset's own writer (PAX format: long names get a pax 'x' header)
with wds.TarWriter(os.path.join(out, "wds_writer.tar")) as w:
    w.write({"__key__": "000000", "txt": b"a cat", "json": b'{"uid": "0"}', "syn.json": b'{"syn_text": ["x", "y"]}'})
    w.write({"__key__": "dir.v1/000001", "txt": "caf\u00e9".encode(), "url.txt": b"http://x/y.jpg"})
    w.write({"__key__": "d/" + "k" * 120, "txt": b"long key"})
    w.write({"__key__": "000002", "TXT": b"upper-case extension", "seg.npz": b"\x00\x01"})
save_expected("wds_writer.tar")
# the same with an integer mtime (no pax mtime records): test_wds writes it again byte for byte
with wds.TarWriter(os.path.join(out, "wds_writer_mtime0.tar"), mtime=0) as w:
    w.write({"__key__": "000000", "txt": b"a cat", "json": b'{"uid": "0"}', "syn.json": b'{"syn_text": ["x", "y"]}'})
    w.write({"__key__": "dir.v1/000001", "txt": "caf\u00e9".encode(), "url.txt": b"http://x/y.jpg"})
    w.write({"__key__": "d/" + "k" * 120, "txt": b"long key"})
    w.write({"__key__": "\u00fc/000003", "txt": b"non-ASCII key", "npz": bytes(range(256)) * 3})
save_expected("wds_writer_mtime0.tar")


def add(tf, name, data, type=tarfile.REGTYPE, pax=None):
    ti = tarfile.TarInfo(name)
    ti.size = len(data) if type == tarfile.REGTYPE else 0
    ti.type = type
    ti.mtime = 0
    if pax:
        ti.pax_headers = pax
    tf.addfile(ti, io.BytesIO(data) if type == tarfile.REGTYPE else None)


# 2. GNU format: names over 100 bytes use ././@LongLink 'L' headers; other member types
with tarfile.open(os.path.join(out, "wds_gnu.tar"), "w", format=tarfile.GNU_FORMAT) as tf:
    add(tf, "a/" + "b" * 150 + ".jpg", b"J" * 700)
    add(tf, "a/" + "b" * 150 + ".txt", b"caption")
    add(tf, "dir", b"", type=tarfile.DIRTYPE)
    ti = tarfile.TarInfo("link.txt")
    ti.type = tarfile.SYMTYPE
    ti.linkname = "x" * 200
    tf.addfile(ti)
    add(tf, "__meta__", b"skipped")
    add(tf, "__meta__/x.txt", b"skipped")
    add(tf, "noext", b"ignored")
    add(tf, "x.y/z.a.b", b"multi")
    add(tf, "x.y/z.c", b"same key")
    add(tf, "q.txt", b"q1")
    add(tf, "r.txt", b"r")
    add(tf, "q.txt", b"q2 (key comes back: a new sample)")
save_expected("wds_gnu.tar")

# 3. pax format with a global header, non-ASCII and long names, a pax path override
with tarfile.open(os.path.join(out, "wds_pax.tar"), "w", format=tarfile.PAX_FORMAT,
                  pax_headers={"comment": "global header"}) as tf:
    add(tf, "\u00fcber/" + "\u00e9" * 80 + ".txt", "unicode".encode())
    add(tf, "short.txt", b"renamed by pax", pax={"path": "renamed/" + "p" * 110 + ".cls"})
    add(tf, "s2.txt", b"s2")
save_expected("wds_pax.tar")

# 4. names: base_plus_ext and skip_meta
names = ["a.b", "a/b.c.d", "a.b/c.d", "a.b/c", ".hidden", "a/.b", "a/b/.c", "a.x/b/.c", "a.x/.c", "x", "a/b",
         "a..b", "a.", "dir/a.", "a.b.c/d.e.f", "a\nb/c.d", "a.b\n/c/.d", "a/b\nc/.d", "./x.y", "../x.y",
         "a//b.c", "/abs.txt", "a/b.c/", "__key__.txt", "__x__", "__x__/y.z", "_x__", "__ab", "__a__\n",
         "__/a.b", "____", "a/__x__.y", "UPPER.TXT", "k.Tar.GZ"]
meta_re = re.compile(r"__[^/]*__($|/)")
res = []
for n in names:
    k, x = tariterators.base_plus_ext(n)
    meta = ("/" not in n and n.startswith("__") and n.endswith("__")) or bool(meta_re.match(n))
    res.append({"name": n, "key": k, "ext": x, "meta": meta})
with open(os.path.join(out, "names.json"), "w") as f:
    json.dump(res, f, indent=1)

# 5. brace expansion
patterns = ["DIR/{00000..00009}.tar", "{1..3}", "{3..1}", "{07..10}", "{-01..1}", "{2..-1}", "{0..10..3}", "{10..0..3}",
            "{a..e}", "{e..a}", "{a..g..2}", "{Y..c}", "{c..A}", "{z..A..5}", "x{a,b}y{1,2}", "{,a}", "{a,}", "{}", "{a}",
            "a{b{1,2},c}d", "{{a,b}}", "}{", "a}b", "{1{2,3}", "\\{1,2}", "{1\\,2,3}", "s{00..02}-{a,b}.tar",
            "{0..0}", "{-0..2}", "{1..3..0}", "{1..3..-1}", "plain.tar", "", "{a..b}{1..2}", "{1..3\n}", "a\\\\b",
            "{x{1..2},y}", "{1,{2..3}}z", "{00..1}", "{8..011}"]
res = []
for p in patterns:
    try:
        r = list(braceexpand.braceexpand(p))
    except Exception:
        r = "error"
    res.append({"pattern": p, "result": r})
with open(os.path.join(out, "brace.json"), "w") as f:
    json.dump(res, f, indent=1)

# 6. npy
rng = np.random.default_rng(7)
meta = []
dtypes = ["<f4", "<f2", "<f8", "<i8", "<i4", "<i2", "<u2", "<u4", "<u8", "|u1", "|i1", "|b1"]
shapes = [(3, 5), (7,), (), (2, 0, 3), (2, 3, 4)]
for i, dt in enumerate(dtypes):
    for j, shape in enumerate(shapes[: 2 if i else 5]):
        if dt == "|b1":
            a = rng.integers(0, 2, size=shape).astype(dt)
        elif dt[1] in "iu":
            info = np.iinfo(dt)
            a = rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(dt)
        else:
            a = (rng.standard_normal(size=shape) * 100).astype(dt)
        for ver in ([None, (1, 0), (2, 0), (3, 0)] if j == 0 else [None]):
            name = "npy_%s_%d_%s.npy" % (dt[1:], j, "v%d" % ver[0] if ver else "save")
            path = os.path.join(out, name)
            if ver is None:
                np.save(path, a)
            else:
                with open(path, "wb") as f:
                    np.lib.format.write_array(f, a, version=ver)
            meta.append({"file": name, "descr": dt, "shape": list(shape), "version": ver[0] if ver else 1,
                         "by_np_save": ver is None, "values": [float(v) for v in a.ravel()]})
# bfloat16 bit patterns stored as uint16 (what tools without a bf16 dtype write)
x = np.array([1.0, -2.5, 3.140625, 1e-3, 65504.0, -0.0], dtype=np.float32)
bf = (x.view(np.uint32) >> 16).astype("<u2")
np.save(os.path.join(out, "npy_bf16_as_u2.npy"), bf)
meta.append({"file": "npy_bf16_as_u2.npy", "descr": "<u2", "shape": [6], "version": 1, "by_np_save": True,
             "values": [float(v) for v in bf], "bf16": [float(v) for v in (bf.astype(np.uint32) << 16).view(np.float32)]})
bad = {
    "npy_bad_bigendian.npy": np.arange(4, dtype=">f4"),
    "npy_bad_fortran.npy": np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)),
    "npy_bad_object.npy": np.array([{"a": 1}, None], dtype=object),
    "npy_bad_struct.npy": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]),
    "npy_bad_unicode.npy": np.array(["ab", "c"]),
}
for name, a in bad.items():
    np.save(os.path.join(out, name), a, allow_pickle=True)
with open(os.path.join(out, "npy.json"), "w") as f:
    json.dump(meta, f, indent=0)

# 7. npz embeddings as DataCompDR stores them
zmeta = []
for name, fn, dt in [("emb_savez.npz", np.savez, "<f4"), ("emb_compressed.npz", np.savez_compressed, "<f4"),
                     ("emb_f16_syn.npz", np.savez_compressed, "<f2")]:
    ie = rng.standard_normal((4, 6)).astype(dt)
    te = rng.standard_normal((3, 6)).astype(dt)
    arrs = {"image_emb": ie, "text_emb": te}
    if "syn" in name:
        arrs["syn_text_emb"] = rng.standard_normal((2, 6)).astype(dt)
    fn(os.path.join(out, name), **arrs)
    zmeta.append({"file": name, "arrays": {k: {"shape": list(v.shape), "values": [float(x) for x in v.ravel()]}
                                           for k, v in arrs.items()}})
with open(os.path.join(out, "npz.json"), "w") as f:
    json.dump(zmeta, f, indent=0)

# 8. WebP images (Pillow's encoder) and what Pillow decodes them to
yy, xx = np.mgrid[0:23, 0:37]
rgb = np.stack([(xx * 7) % 256, (yy * 11) % 256, ((xx + yy) * 5) % 256], -1).astype(np.uint8)
alpha = ((xx * 13 + yy * 3) % 256).astype(np.uint8)
images = {
    "lossy.webp": (Image.fromarray(rgb), dict(quality=80)),
    "lossless.webp": (Image.fromarray(rgb), dict(lossless=True)),
    "alpha_lossy.webp": (Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), dict(quality=70)),
    "alpha_lossless.webp": (Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), dict(lossless=True, exact=True)),
}
for name, (im, kw) in images.items():
    path = os.path.join(out, name)
    im.save(path, "WEBP", **kw)
frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
frames[0].save(os.path.join(out, "anim.webp"), "WEBP", save_all=True, append_images=frames[1:], duration=100,
               lossless=True)
for name in list(images) + ["anim.webp"]:
    path = os.path.join(out, name)
    with Image.open(path) as im:
        with open(path[:-5] + ".rgb", "wb") as f:
            f.write(im.convert("RGB").tobytes())
print("written to", out)
