"""Write docs/img/synthetic-vs-real.png: real THSR captchas (left) beside synthetic ones (right)."""
import sys
from pathlib import Path

import cv2
import numpy as np

from kerashw.captcha import synth

real_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/thsr-sample")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/img/synthetic-vs-real.png")
rng = np.random.default_rng(0)
real = [cv2.imread(str(p)) for p in sorted(real_dir.glob("*.jpg"))[:8]]
fake = [synth.generate(synth.random_label(rng), i)[:, :, ::-1] for i in range(8)]
cell = lambda im: cv2.copyMakeBorder(cv2.resize(im, (260, 100), interpolation=cv2.INTER_NEAREST),
                                     4, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
rows = [np.hstack([cell(r), np.full((108, 20, 3), 255, np.uint8), cell(f)]) for r, f in zip(real, fake)]
head = np.full((30, rows[0].shape[1], 3), 255, np.uint8)
cv2.putText(head, "real (thsr-sample)", (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
cv2.putText(head, "synthetic (kerashw.synth)", (296, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
cv2.imwrite(str(out), np.vstack([head, *rows]))
print(f"wrote {out}")
