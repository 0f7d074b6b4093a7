/** Transforms: one declaration each (library.ts), compiled into a batch plan (plan.ts). */
export {
  Transform,
  Compose,
  RandomApply,
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
  resize,
  randomResizedCrop,
  compose,
  randomApply,
} from "./library";
export type { Shape, Params, ColorJitterOptions, RandomErasingOptions, RandomCropOptions, PadOptions, ResizeOptions, RandomResizedCropOptions, Interpolation } from "./library";
export { Plan } from "./plan";
export type { DrawAddress, Layout, SampleTaps, FillState } from "./plan";
export type { BorderMode, AxisTaps } from "./geometry";
export type { FloatImage } from "./reference";
export { mixup, cutmix, beta } from "./batch";
export type { BatchTransform, MixResult } from "./batch";
