"""Replays batchlab's drawn parameters through torchvision's functional ops.

Reads one JSON case per line on stdin:
  {"id", "image": base64 uint8 HWC, "shape": [h, w, c], "chain": [step...],
   "out": base64 float32 CHW (batchlab's output), "outShape": [c, h, w]}
where each step is {"name", "options", "params"} (containers: "transforms"/"inner").
Writes one JSON line per case: {"id", "shape", "max", "mean"} (absolute differences), or
{"id", "error"}. torchvision runs on float32 tensors holding 0..255 until ToTensor, as batchlab's
values do, so the comparison sees the maths, not uint8 rounding.
"""
import base64
import functools
import itertools
import json
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
import torchvision.transforms.functional_tensor as FT
from torchvision.transforms import InterpolationMode

# torchvision 0.14 refuses bicubic warps of tensors at one argument check only: its grid, its
# grid_sample call and its fill blend take "bicubic" as they are. The replay widens that check,
# so batchlab's bicubic rotate, affine and perspective meet torchvision's own code path.
_grid_inputs = FT._assert_grid_transform_inputs


def _grid_inputs_with_bicubic(img, matrix, interpolation, fill, supported_interpolation_modes, coeffs=None):
    return _grid_inputs(img, matrix, interpolation, fill, list(supported_interpolation_modes) + ["bicubic"], coeffs)


FT._assert_grid_transform_inputs = _grid_inputs_with_bicubic

INTERP = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
    "nearest-exact": "nearest-exact",  # torchvision 0.14 has no NEAREST_EXACT; torch's interpolate does
}


def resize(x, size, o):
    mode = INTERP[o["interpolation"]]
    if mode == "nearest-exact":
        if len(size) == 1:
            h, w = x.shape[1:]
            s = size[0]
            size = [s, int(s * w / h)] if h <= w else [int(s * h / w), s]
        return torch.nn.functional.interpolate(x[None], size=size, mode="nearest-exact")[0]
    return F.resize(x, size, mode, max_size=o.get("maxSize"), antialias=o["antialias"] and mode != InterpolationMode.NEAREST)
# batchlab's ColorJitter order index over (brightness, contrast, saturation).
JITTER_ORDERS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


# With hue: torch.randperm(4)'s orders, lexicographic.
HUE_ORDERS = list(itertools.permutations(range(4)))


def jitter(x, p, bound):
    # torchvision's float path clamps to [0, 1]; on 0..255 values scale there and back.
    y = x / bound
    hue = p.get("hue")
    for which in (JITTER_ORDERS if hue is None else HUE_ORDERS)[p["order"]]:
        f = [p["brightness"], p["contrast"], p["saturation"], hue][which]
        if f is None:
            continue
        y = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue][which](y, f)
    return y * bound


def pad(x, padding, fill, mode):
    if mode == "constant" and isinstance(fill, list) and len(set(fill)) > 1:
        # F.pad takes one number; pad each channel with its own value.
        return torch.stack([F.pad(x[c:c + 1], padding, fill=float(fill[c]))[0] for c in range(x.shape[0])])
    f = fill[0] if isinstance(fill, list) else fill
    return F.pad(x, padding, fill=float(f), padding_mode=mode)


def level(x, bound):
    """batchlab's uint8 level of a value in the units in force (photometric.ts)."""
    y = x if bound == 255.0 else x * 255.0
    return torch.round(y).clamp(0, 255).to(torch.uint8)


def unlevel(q, bound):
    return q.to(torch.float32) if bound == 255.0 else q.to(torch.float32) / 255.0


def photometric(name, o, p, x, bound):
    """The photometric ops of photometric.ts through torchvision's functional ops (None: not one of them)."""
    if name == "RandomChannelPermutation":
        return x[list(p["permutation"])]  # torchvision v2's permute_channels
    if name == "GaussianBlur":
        return F.gaussian_blur(x, list(o["kernelSize"]), [p["sigma"], p["sigma"]])
    if name == "RandomPhotometricDistort":  # torchvision v2's order, on 0..1
        y = x / bound
        has = lambda k: p[k] is not None
        if has("brightness"):
            y = F.adjust_brightness(y, p["brightness"])
        if has("contrast") and p["contrastBefore"]:
            y = F.adjust_contrast(y, p["contrast"])
        if has("saturation"):
            y = F.adjust_saturation(y, p["saturation"])
        if has("hue"):
            y = F.adjust_hue(y, p["hue"])
        if has("contrast") and not p["contrastBefore"]:
            y = F.adjust_contrast(y, p["contrast"])
        if p["permutation"]:
            y = y[list(p["permutation"])]
        return y * bound
    if name not in ("RandomInvert", "RandomPosterize", "RandomSolarize", "RandomAutocontrast", "RandomEqualize", "RandomAdjustSharpness"):
        return None
    if not p["apply"]:
        return x
    if name == "RandomPosterize":
        return unlevel(F.posterize(level(x, bound), o["bits"]), bound)
    if name == "RandomEqualize":
        return unlevel(F.equalize(level(x, bound)), bound)
    # The float ops, on 0..1 (torchvision's float range), then back to the units in force.
    y = x / bound
    if name == "RandomInvert":
        y = F.invert(y)
    elif name == "RandomSolarize":
        y = F.solarize(y, o["threshold"] / bound)
    elif name == "RandomAutocontrast":
        y = F.autocontrast(y)
    else:
        y = F.adjust_sharpness(y, o["sharpnessFactor"])
    return y * bound


POLICY_WARPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def policy_op(x, op, bound, interp, fill):
    """One op a policy chose, through torchvision's _apply_op, in batchlab's units (policies.ts)."""
    from torchvision.transforms.autoaugment import _apply_op
    name, m = op["name"], op["magnitude"]
    if name in POLICY_WARPS:
        return _apply_op(x, name, m, interp, fill)
    if name in ("Posterize", "Equalize"):
        return unlevel(_apply_op(level(x, bound), name, m, interp, None), bound)
    if name == "Solarize":  # the magnitude is a level: the threshold m / 255 on 0..1
        return _apply_op(x / bound, name, m / 255.0, interp, None) * bound
    return _apply_op(x / bound, name, m, interp, None) * bound


def policy(name, o, p, x, bound):
    if name not in ("AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix"):
        return None
    interp = INTERP[o["interpolation"]]
    fill = o["fill"] if isinstance(o["fill"], list) else [o["fill"]]
    fill = [float(f) for f in (fill * x.shape[0] if len(fill) == 1 else fill)]
    run = lambda y, ops: functools.reduce(lambda a, op: policy_op(a, op, bound, interp, fill), ops, y)
    if name != "AugMix":
        return run(x, p["ops"])
    mix = torch.tensor(p["original"], dtype=torch.float32) * x
    for w, chain in zip(p["weights"], p["chains"]):
        mix = mix + torch.tensor(w, dtype=torch.float32) * run(x, chain)
    return mix


def apply(step, x, state):
    name, o, p = step["name"], step.get("options", {}), step.get("params")
    if name == "Compose":
        for s, q in zip(step["transforms"], p["steps"]):
            x = apply({**s, "params": q}, x, state)
        return x
    if name == "RandomApply":
        return apply({**step["inner"], "params": p["inner"]}, x, state) if p["apply"] else x
    if name == "ToTensor":
        state["bound"] = 1.0
        return x / 255.0
    if name == "Normalize":
        return F.normalize(x, o["mean"], o["std"])
    if name == "RandomHorizontalFlip":
        return F.hflip(x) if p["flip"] else x
    if name == "RandomVerticalFlip":
        return F.vflip(x) if p["flip"] else x
    if name == "RandomCrop":
        l, t, r, b = o["padding"]
        h, w = o["size"]
        if o["padIfNeeded"]:
            if x.shape[1] + t + b < h:
                d = h - (x.shape[1] + t + b)
                t, b = t + d, b + d
            if x.shape[2] + l + r < w:
                d = w - (x.shape[2] + l + r)
                l, r = l + d, r + d
        if l or t or r or b:
            x = pad(x, [l, t, r, b], o["fill"], o["paddingMode"])
        return F.crop(x, p["top"], p["left"], h, w)
    if name == "Pad":
        return pad(x, o["padding"], o["fill"], o["mode"])
    if name == "RandomZoomOut":
        # torchvision v2's RandomZoomOut is F.pad with its drawn padding (0.14 has no v2): the same.
        return pad(x, list(p["padding"]), o["fill"], "constant") if p["apply"] else x
    if name in ("RandomRotation", "RandomAffine", "RandomPerspective"):
        fill = o["fill"] if isinstance(o["fill"], list) else [o["fill"]]
        fill = [float(f) for f in (fill * x.shape[0] if len(fill) == 1 else fill)]
        interp = INTERP[o["interpolation"]]
        if name == "RandomRotation":
            return F.rotate(x, p["angle"], interp, expand=o.get("expand", False), center=o.get("center"), fill=fill)
        if name == "RandomAffine":
            return F.affine(x, p["angle"], list(p["translate"]), p["scale"], list(p["shear"]), interp, fill=fill, center=o.get("center"))
        return F.perspective(x, p["startpoints"], p["endpoints"], interp, fill=fill) if p["apply"] else x
    if name == "ElasticTransform":
        # batchlab's control grid, interpolated at the pixel centres as its warp pass does (in
        # double here), handed to torchvision in its normalised units (a pixel is 2 / W in x).
        fill = o["fill"] if isinstance(o["fill"], list) else [o["fill"]]
        fill = [float(f) for f in (fill * x.shape[0] if len(fill) == 1 else fill)]
        g = o["grid"]
        d = np.asarray(p["displacement"], dtype=np.float64).reshape(g, g, 2)
        hh, ww = x.shape[1], x.shape[2]
        u = (np.arange(ww) + 0.5) * (g - 1) / ww
        t = (np.arange(hh) + 0.5) * (g - 1) / hh
        j0 = np.minimum(np.floor(u).astype(int), g - 2)
        i0 = np.minimum(np.floor(t).astype(int), g - 2)
        a = (u - j0)[None, :, None]
        b = (t - i0)[:, None, None]
        top = d[i0][:, j0] * (1 - a) + d[i0][:, j0 + 1] * a
        bottom = d[i0 + 1][:, j0] * (1 - a) + d[i0 + 1][:, j0 + 1] * a
        pix = top * (1 - b) + bottom * b
        norm = np.stack([pix[..., 0] * 2 / ww, pix[..., 1] * 2 / hh], -1)
        disp = torch.from_numpy(norm.astype(np.float32))[None]
        return F.elastic_transform(x, disp, INTERP[o["interpolation"]], fill=fill)
    if name == "CenterCrop":
        return F.center_crop(x, o["size"])
    if name == "Resize":
        return resize(x, o["size"] if isinstance(o["size"], list) else [o["size"]], o)
    if name == "RandomResizedCrop":
        return resize(F.crop(x, p["top"], p["left"], p["height"], p["width"]), o["size"], o)
    if name in ("Grayscale", "RandomGrayscale"):
        if p is not None and not p.get("apply", True):
            return x
        n = o.get("numOutputChannels") or x.shape[0]
        if x.shape[0] == 1:
            return x.repeat(n, 1, 1)
        return F.rgb_to_grayscale(x, num_output_channels=n)
    if name == "ColorJitter":
        return jitter(x, p, state["bound"])
    if name == "RandomErasing":
        if not p["apply"]:
            return x
        v = o["value"]
        v = torch.tensor(v if isinstance(v, list) else [v], dtype=torch.float32).view(-1, 1, 1)
        return F.erase(x, p["y"], p["x"], p["h"], p["w"], v)
    if name == "RandomChoice":
        return apply({**step["transforms"][p["choice"]], "params": p["steps"][p["choice"]]}, x, state)
    if name == "RandomOrder":
        for k in p["order"]:
            x = apply({**step["transforms"][k], "params": p["steps"][k]}, x, state)
        return x
    y = photometric(name, o, p, x, state["bound"])
    if y is None:
        y = policy(name, o, p, x, state["bound"])
    if y is not None:
        return y
    raise ValueError(f"no torchvision replay for {name}")


def pil_resize(img, step, p):
    """One Resize or RandomResizedCrop on a PIL image (uint8 out, as PIL computes it)."""
    from PIL import Image
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    o = step["options"]
    mode = INTERP[o["interpolation"]]
    size = o["size"] if isinstance(o["size"], list) else [o["size"]]
    if step["name"] == "RandomResizedCrop":
        out = F.resized_crop(pil, p["top"], p["left"], p["height"], p["width"], size, mode)
    else:
        out = F.resize(pil, size, mode, max_size=o.get("maxSize"))
    a = np.asarray(out, dtype=np.float32)
    return torch.from_numpy(a.reshape(a.shape[0], a.shape[1], -1)).permute(2, 0, 1)


def main():
    torch.set_num_threads(1)
    for line in sys.stdin:
        case = json.loads(line)
        try:
            h, w, c = case["shape"]
            img = np.frombuffer(base64.b64decode(case["image"]), dtype=np.uint8).reshape(h, w, c)
            if case.get("pil"):
                y = pil_resize(img, case["chain"][0], case["params"][0])
            else:
                x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).contiguous()
                y = apply({"name": "Compose", "transforms": case["chain"], "params": {"steps": case["params"]}}, x, {"bound": 255.0})
            ours = np.frombuffer(base64.b64decode(case["out"]), dtype=np.float32).reshape(case["outShape"])
            theirs = y.numpy()
            if case.get("pil"):
                ours = np.clip(ours, 0, 255)  # PIL's uint8 output saturates where a cubic overshoots
            if list(theirs.shape) != list(ours.shape):
                print(json.dumps({"id": case["id"], "shape": list(theirs.shape)}), flush=True)
                continue
            d = np.abs(theirs.astype(np.float64) - ours.astype(np.float64))
            res = {"id": case["id"], "shape": list(theirs.shape), "max": float(d.max()) if d.size else 0.0, "mean": float(d.mean()) if d.size else 0.0}
            if case.get("tol") is not None:
                res.update(off=int((d > case["tol"]).sum()), values=int(d.size))
            print(json.dumps(res), flush=True)
        except Exception as e:  # reported per case, so one bad case names itself
            print(json.dumps({"id": case["id"], "error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
