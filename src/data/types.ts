/** The shapes every stage agrees on: an image, a sample, a dataset. */

/** Row-major uint8 pixels, height x width x channels (HWC). `data` is a view, never a copy. */
export interface Image {
  readonly data: Uint8Array;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

export interface Sample {
  readonly image: Image;
  readonly label: number;
  /** The dataset index this sample came from. */
  readonly index: number;
  /** The file it was read from, for error messages and views. */
  readonly path?: string;
}

export type MaybePromise<T> = T | Promise<T>;

/**
 * Where an in-memory dataset keeps its pixels: every sample has one shape, and sample i's
 * height*width*channels bytes start at `pixels[(index ? index[i] : i) * height*width*channels]`.
 * The loader hands such a dataset to the native engine as one buffer plus offsets, with no
 * per-sample objects (the fast path); `get(i)` must return exactly these bytes.
 */
export interface PixelStore {
  readonly pixels: Uint8Array;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** Label of sample i (indexed like the dataset, not like the stored images). */
  readonly labels: Int32Array;
  /** Stored image of sample i, when the dataset reorders or selects (a subset). */
  readonly index?: Int32Array;
}

export interface Dataset {
  readonly length: number;
  /** Class names by label, when the format knows them. */
  readonly classNames?: readonly string[];
  /** [height, width, channels] when every sample has that shape. */
  readonly shape?: readonly [number, number, number];
  /** Sample i. In-memory formats answer synchronously; file-backed ones with a promise. */
  get(i: number): MaybePromise<Sample>;
  /** All labels, when known without decoding images (samplers and plots use it). */
  labels?(): Int32Array;
  /** The file behind sample i, for error messages. */
  pathOf?(i: number): string | undefined;
  /** The pixels in one buffer, when the dataset keeps them so (see PixelStore). */
  pixelStore?(): PixelStore | undefined;
}
