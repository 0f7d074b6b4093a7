"""The peer: PyTorch's DataLoader with torchvision transforms on the same CIFAR-shaped data.

Mirrors torchvision.datasets.CIFAR10 (uint8 HWC array, PIL image per sample) with the standard
augmentation ("crop", the default), the geometry chain of bench/synthetic.js ("geometry"), or
its policy chains ("randaugment", "trivialaugment", "augmix").
Prints one JSON line per configuration: images/second over one shuffled epoch.

Arguments: n h w c workers[,workers...] [crop|geometry|randaugment|trivialaugment|augmix]
"""
import json
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T


class ArrayImages(Dataset):
    def __init__(self, x, y, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = Image.fromarray(self.x[i].squeeze() if self.x.shape[3] == 1 else self.x[i])
        return self.transform(img), int(self.y[i])


def main():
    n, h, w, c = (int(a) for a in sys.argv[1:5])
    workers = [int(a) for a in sys.argv[5].split(",")]
    mean, std = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)) if c == 3 else ((0.286,), (0.353,))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    chain = sys.argv[6] if len(sys.argv) > 6 else "crop"
    if chain == "crop":
        tf = T.Compose([T.RandomCrop(h, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    elif chain == "geometry":
        bilinear = T.InterpolationMode.BILINEAR
        tf = T.Compose([
            T.RandomRotation(15, interpolation=bilinear),
            T.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5, interpolation=bilinear),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ])
    elif chain in ("randaugment", "trivialaugment", "augmix"):
        crop = T.RandomCrop(32, padding=4) if h == 32 else T.RandomResizedCrop(h)
        policy = {"randaugment": T.RandAugment, "trivialaugment": T.TrivialAugmentWide, "augmix": T.AugMix}[chain]()
        tf = T.Compose([crop, T.RandomHorizontalFlip(), policy, T.ToTensor(), T.Normalize(mean, std)])
    else:
        sys.exit(f"torch_loader.py: chain: expected crop, geometry, randaugment, trivialaugment or augmix, received {chain!r}")
    ds = ArrayImages(x, y, tf)
    torch.set_num_threads(1)
    for nw in workers:
        loader = DataLoader(ds, batch_size=256, shuffle=True, num_workers=nw, persistent_workers=False)
        t0 = time.perf_counter()
        seen = 0
        for xb, _ in loader:
            seen += xb.shape[0]
        dt = time.perf_counter() - t0
        print(json.dumps({"num_workers": nw, "images": seen, "seconds": dt, "images_per_s": seen / dt}), flush=True)


if __name__ == "__main__":
    main()
