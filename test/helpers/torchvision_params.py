"""Draws torchvision 0.14's get_params N times per transform; prints one JSON object of samples.

Usage: torchvision_params.py N H W  (the image size the parameters are drawn for)
"""
import json
import sys

import torch
import torchvision.transforms as T

n, h, w = (int(a) for a in sys.argv[1:4])
torch.manual_seed(12345)
img = torch.zeros(1, h, w)
out = {"rotation.angle": [], "affine.angle": [], "affine.tx": [], "affine.ty": [], "affine.scale": [],
       "affine.shearX": [], "affine.shearY": [], "rrc.top": [], "rrc.left": [], "rrc.height": [], "rrc.width": [], "blur.sigma": [], "jitter.hue": []}
for k in range(8):
    out[f"perspective.{k}"] = []
rot = T.RandomRotation(30)
for _ in range(n):
    out["rotation.angle"].append(rot.get_params(rot.degrees))
    angle, (tx, ty), scale, (sx, sy) = T.RandomAffine.get_params([-25.0, 25.0], [0.2, 0.1], [0.7, 1.3], [-10.0, 10.0, -5.0, 5.0], [w, h])
    for key, val in (("angle", angle), ("tx", tx), ("ty", ty), ("scale", scale), ("shearX", sx), ("shearY", sy)):
        out[f"affine.{key}"].append(val)
    _, end = T.RandomPerspective.get_params(w, h, 0.6)
    for k, v in enumerate(c for pt in end for c in pt):
        out[f"perspective.{k}"].append(v)
    top, left, hh, ww = T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
    for key, val in (("top", top), ("left", left), ("height", hh), ("width", ww)):
        out[f"rrc.{key}"].append(val)
    out["blur.sigma"].append(T.GaussianBlur.get_params(0.1, 2.0))
    out["jitter.hue"].append(T.ColorJitter.get_params(None, None, None, [-0.3, 0.3])[4])
print(json.dumps(out))
