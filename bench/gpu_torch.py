"""PyTorch's side of `npm run bench:gpu` (bench/gpu.js), measured in the same run.

  python3 gpu_torch.py transfer SIZES          host-to-device copy of a pinned uint8 tensor,
                                               tensor.to("cuda", non_blocking=True), by size
  python3 gpu_torch.py augment CASE N REPS     torchvision.transforms.v2 on a CUDA uint8 batch

CASE: cifar (32x32: RandomCrop(32, padding=4), RandomHorizontalFlip, ToDtype(float32, scale),
Normalize), imagenet (256x256 -> RandomResizedCrop(224, bilinear, no antialias),
RandomHorizontalFlip, ToDtype, Normalize), imagenet_jitter (imagenet with ColorJitter(0.4, 0.4,
0.4) after the flip, on the uint8 image, as batchlab's chain applies it before toTensor).

Prints one JSON object on the last line of stdout. Times: transfer from CUDA events; augment
from wall time around torch.cuda.synchronize() (launch overhead is part of the cost).
"""
import json
import sys
import time


def transfer(torch, sizes):
    out = []
    for size in sizes:
        host = torch.empty(size, dtype=torch.uint8).pin_memory()
        host.fill_(7)
        reps = min(200, max(3, -(-(2**29) // size)))
        dev = host.to("cuda", non_blocking=True)  # warm-up: allocator and context
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            dev = host.to("cuda", non_blocking=True)
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / reps
        out.append({"bytes": size, "repeats": reps, "ms": ms, "GBps": size / (ms * 1e-3) / 1e9})
        del dev, host
    return out


def make_case(torch, v2, case):
    mean = [0.4914, 0.4822, 0.4465] if case == "cifar" else [0.485, 0.456, 0.406]
    std = [0.2470, 0.2435, 0.2616] if case == "cifar" else [0.229, 0.224, 0.225]
    tail = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if case == "cifar":
        return 32, v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] + tail)
    head = [v2.RandomResizedCrop(224, interpolation=v2.InterpolationMode.BILINEAR, antialias=False), v2.RandomHorizontalFlip()]
    if case == "imagenet_jitter":
        head.append(v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4))
    return 256, v2.Compose(head + tail)


def timed(torch, fn, reps):
    fn()
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def augment(torch, case, n, reps):
    from torchvision.transforms import v2

    size, tf = make_case(torch, v2, case)
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, device="cuda", generator=gen)
    host = x.cpu().pin_memory()
    torch.manual_seed(0)

    def per_sample():  # every sample its own random parameters, as batchlab draws them
        return torch.stack([tf(x[i]) for i in range(n)])

    def batched():  # one parameter draw for the whole batch
        return tf(x)

    def end_to_end():  # pinned host uint8 -> device -> batched transforms
        return tf(host.to("cuda", non_blocking=True))

    per_ms = timed(torch, per_sample, max(2, reps // 4))
    batch_ms = timed(torch, batched, reps)
    e2e_ms = timed(torch, end_to_end, reps)
    out_shape = list(batched().shape)
    return {
        "case": case,
        "n": n,
        "outShape": out_shape,
        "perSampleMs": per_ms,
        "batchedMs": batch_ms,
        "endToEndMs": e2e_ms,
    }


def main():
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "torch.cuda.is_available() is False"}))
        return
    mode = sys.argv[1]
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
    if mode == "transfer":
        info["transfer"] = transfer(torch, [int(s) for s in sys.argv[2].split(",")])
    elif mode == "augment":
        info["augment"] = augment(torch, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
