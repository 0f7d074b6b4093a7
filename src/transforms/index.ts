/** Transforms: one declaration each (library.ts; photometric.ts; policies.ts), compiled into a batch plan (plan.ts). */
export {
  Transform,
  Compose,
  RandomApply,
  RandomChoice,
  RandomOrder,
  toTensor,
  normalize,
  grayscale,
  randomGrayscale,
  colorJitter,
  randomErasing,
  randomHorizontalFlip,
  randomVerticalFlip,
  randomCrop,
  centerCrop,
  pad,
  randomZoomOut,
  resize,
  randomResizedCrop,
  randomRotation,
  randomAffine,
  randomPerspective,
  elasticTransform,
  compose,
  randomApply,
  randomChoice,
  randomOrder,
} from "./library";
export type { Shape, Params, ColorJitterOptions, RandomErasingOptions, RandomCropOptions, PadOptions, RandomZoomOutOptions, ResizeOptions, RandomResizedCropOptions, RandomRotationOptions, RandomAffineOptions, RandomPerspectiveOptions, ElasticTransformOptions, Interpolation } from "./library";
export {
  randomInvert,
  randomPosterize,
  randomSolarize,
  randomAutocontrast,
  randomEqualize,
  randomAdjustSharpness,
  randomChannelPermutation,
  gaussianBlur,
  gaussianKernel,
  randomPhotometricDistort,
  gaussianNoise,
} from "./photometric";
export type { GaussianBlurOptions, RandomPhotometricDistortOptions, GaussianNoiseOptions } from "./photometric";
export { autoAugment, randAugment, trivialAugmentWide, augMix, applyOp } from "./policies";
export type { AutoAugmentOptions, RandAugmentOptions, TrivialAugmentWideOptions, AugMixOptions, PolicyOptions, PolicyOp, OpName } from "./policies";
export { Plan } from "./plan";
export type { DrawAddress, Layout, SampleTaps, FillState } from "./plan";
export type { BorderMode, AxisTaps } from "./geometry";
export { mapPoint } from "./warp";
export type { Mat3, WarpInterpolation } from "./warp";
export type { FloatImage } from "./reference";
export { mixup, cutmix, beta } from "./batch";
export type { BatchTransform, MixResult } from "./batch";
