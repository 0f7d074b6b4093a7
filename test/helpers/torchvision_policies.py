"""Records what torchvision 0.14's policies choose: N draws each, on an H x W RGB uint8 image.

Usage: torchvision_policies.py N H W. torchvision's _apply_op is replaced by a recorder that
returns the image unchanged, so each sample's list of (op, magnitude) is exactly what the
policy drew; AugMix's Dirichlet draws are recorded too (the original image's weight). Prints
one JSON object: {policy: [[[name, magnitude], ...] per sample], "augmix.original": [...]}.
"""
import json
import sys

import torch
import torchvision.transforms as T
import torchvision.transforms.autoaugment as A

n, h, w = (int(a) for a in sys.argv[1:4])
torch.manual_seed(2024)
img = torch.zeros(3, h, w, dtype=torch.uint8)
current = []


def record(image, op_name, magnitude, interpolation, fill):
    current.append([op_name, float(magnitude)])
    return image


A._apply_op = record
originals = []
real_dirichlet = A.AugMix._sample_dirichlet


def dirichlet(self, params):
    out = real_dirichlet(self, params)
    if params.shape[-1] == 2:
        originals.append(float(out[0, 0]))
    return out


A.AugMix._sample_dirichlet = dirichlet
policies = {
    "RandAugment": T.RandAugment(),
    "TrivialAugmentWide": T.TrivialAugmentWide(),
    "AutoAugment.imagenet": T.AutoAugment(T.AutoAugmentPolicy.IMAGENET),
    "AutoAugment.svhn": T.AutoAugment(T.AutoAugmentPolicy.SVHN),
    "AugMix": T.AugMix(),
}
out = {}
for key, policy in policies.items():
    samples = []
    for _ in range(n):
        current = []
        policy(img)
        samples.append(current)
    out[key] = samples
out["augmix.original"] = originals
print(json.dumps(out))
