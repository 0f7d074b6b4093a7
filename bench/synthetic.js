"use strict";
// The benchmarks' synthetic data sets: n x h x w x 3 uint8 from a fixed LCG (the same bytes in
// every run and every process), labels i % 10, and the chains run over them.
const MEAN = [0.4914, 0.4822, 0.4465];
const STD = [0.247, 0.2435, 0.2616];

function cifarShaped(bl, n) {
  return synthetic(bl, n, 32, 32);
}

function synthetic(bl, n, h, w) {
  const pixels = new Uint8Array(n * h * w * 3);
  let x = 12345;
  for (let i = 0; i < pixels.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    pixels[i] = x >>> 24;
  }
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  return bl.datasets.fromArrays(pixels, [n, h, w, 3], labels);
}

/** RandomCrop(32, padding 4), RandomHorizontalFlip, ToTensor, Normalize(CIFAR mean, std). */
function cifarChain(T) {
  return T.compose([T.randomCrop(32, { padding: 4 }), T.randomHorizontalFlip(), T.toTensor(), T.normalize(MEAN, STD)]);
}

/**
 * The geometry chain: RandomRotation(15), RandomAffine(translate 0.1, scale 0.9-1.1, shear 5),
 * RandomHorizontalFlip, ToTensor, Normalize; bilinear warps, fill 0. bench/torch_loader.py
 * "geometry" is the same chain in torchvision.
 */
function cifarGeometry(T) {
  return T.compose([
    T.randomRotation(15, { interpolation: "bilinear" }),
    T.randomAffine({ degrees: 0, translate: [0.1, 0.1], scale: [0.9, 1.1], shear: 5, interpolation: "bilinear" }),
    T.randomHorizontalFlip(),
    T.toTensor(),
    T.normalize(MEAN, STD),
  ]);
}

/**
 * A policy chain as PyTorch code writes it: at 32, RandomCrop(32, padding 4) and a flip; at 224,
 * RandomResizedCrop(224) and a flip; then RandAugment(), TrivialAugmentWide() or AugMix(),
 * ToTensor, Normalize. bench/torch_loader.py "randaugment" / "trivialaugment" / "augmix" are the
 * same in torchvision.
 */
function policyChain(T, policy, side) {
  const crop = side === 32 ? T.randomCrop(32, { padding: 4 }) : T.randomResizedCrop(side);
  const chosen = { randaugment: () => T.randAugment(), trivialaugment: () => T.trivialAugmentWide(), augmix: () => T.augMix() }[policy];
  return T.compose([crop, T.randomHorizontalFlip(), chosen(), T.toTensor(), T.normalize(MEAN, STD)]);
}

module.exports = { synthetic, cifarShaped, cifarChain, cifarGeometry, policyChain, MEAN, STD };
