#!/usr/bin/env python3
"""Reference data for the bicubic resample (tests/data/bicubic/), from PIL 9.4 itself.

open_clip's eval transform on PIL images is Resize(R, BICUBIC) on the shorter side (the longer
becomes int(R * long / short)), CenterCrop(R) (offsets round((size - R) / 2), Python rounding)
and the RGB conversion; torchvision's PIL path for these is Image.resize(size, BICUBIC) and
Image.crop(box), which is what this script calls (so torchvision is not needed). It also writes
plain Image.resize((w, h), BICUBIC) results at sizes that shrink one axis and enlarge the other.

Run in a throw-away environment:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install pillow==9.4.0
    /tmp/venv/bin/python tools/reference/gen_bicubic_ref.py ../shared/images tests/data/bicubic
Outputs (lossless PNG, RGB) and cases.json listing every case; byte-reproducible.
"""
import json
import os
import sys

import PIL
from PIL import Image

EVAL = [("chelsea.png", 224), ("synthetic_tall_97x301.jpg", 224), ("astronaut.png", 96), ("camera.png", 64),
        ("hubble_deep_field.jpg", 80), ("synthetic_tiny_17x13_palette.png", 40), ("coins.png", 50),
        ("synthetic_gradient_1024x768.png", 48)]
RESIZE = [("chelsea.png", 77, 331), ("synthetic_tiny_17x13_palette.png", 45, 7), ("rocket.jpg", 150, 33),
          ("logo.png", 31, 29)]


def main(src, dst):
    assert PIL.__version__ == "9.4.0", PIL.__version__
    os.makedirs(dst, exist_ok=True)
    cases = []
    for name, R in EVAL:
        im = Image.open(os.path.join(src, name)).convert("RGB")
        w, h = im.size
        if w <= h:
            size = (R, int(R * h / w))
        else:
            size = (int(R * w / h), R)
        rs = im.resize(size, Image.BICUBIC)
        left, top = int(round((size[0] - R) / 2.0)), int(round((size[1] - R) / 2.0))
        out = rs.crop((left, top, left + R, top + R))
        fn = "%s.eval%d.png" % (os.path.splitext(name)[0], R)
        out.save(os.path.join(dst, fn))
        cases.append({"source": name, "op": "eval", "R": R, "resized": list(size), "offset": [left, top],
                      "out": fn})
    for name, w, h in RESIZE:
        im = Image.open(os.path.join(src, name)).convert("RGB")
        out = im.resize((w, h), Image.BICUBIC)
        fn = "%s.resize%dx%d.png" % (os.path.splitext(name)[0], w, h)
        out.save(os.path.join(dst, fn))
        cases.append({"source": name, "op": "resize", "size": [w, h], "out": fn})
    with open(os.path.join(dst, "cases.json"), "w") as f:
        json.dump({"generator": "tools/reference/gen_bicubic_ref.py", "PIL": PIL.__version__, "cases": cases}, f,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
