"""The peer of bench/photos.js: torchvision's ImageFolder (PIL decode) with the ImageNet training
chain, RandomResizedCrop(224), RandomHorizontalFlip, ToTensor, Normalize, through PyTorch's
DataLoader (batch 64, shuffled). Prints one JSON line per num_workers: images/second over one
epoch, and the peak RSS of this process and its workers.

Also `pil` mode: PIL's full decode (Image.open(f).convert("RGB")) of the files on one core.

Arguments: folder workers[,workers...] | pil folder limit
"""
import json
import resource
import sys
import time


def peak_rss():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) * 1024


def loader_mode(root, workers):
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms as T

    tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    ds = datasets.ImageFolder(root, transform=tf)
    torch.set_num_threads(1)
    for nw in workers:
        dl = DataLoader(ds, batch_size=64, shuffle=True, num_workers=nw, persistent_workers=False)
        t0 = time.perf_counter()
        seen = 0
        for x, _ in dl:
            seen += x.shape[0]
        dt = time.perf_counter() - t0
        print(json.dumps({"num_workers": nw, "images_per_s": seen / dt, "peak_rss": peak_rss()}), flush=True)


def pil_mode(root, limit):
    import os
    from PIL import Image

    files = []
    for d in sorted(x for x in os.listdir(root) if os.path.isdir(os.path.join(root, x))):
        for f in sorted(os.listdir(os.path.join(root, d))):
            files.append(os.path.join(root, d, f))
    files = files[:limit]
    blobs = [open(f, "rb").read() for f in files]
    import io

    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        for b in blobs:
            Image.open(io.BytesIO(b)).convert("RGB").load()
        best = max(best, len(blobs) / (time.perf_counter() - t0))
    print(json.dumps({"images_per_s": best, "peak_rss": peak_rss()}))


if __name__ == "__main__":
    if sys.argv[1] == "pil":
        pil_mode(sys.argv[2], int(sys.argv[3]))
    else:
        loader_mode(sys.argv[1], [int(w) for w in sys.argv[2].split(",")])
