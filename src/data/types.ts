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
  /**
   * Sample i not yet decoded (see EncodedSample), when the data set can decode a window of it
   * cheaper than the whole; the loader then decodes only what the plan reads. get(i) stays the
   * full decode.
   */
  encoded?(i: number): Promise<EncodedSample>;
  /**
   * True when every get(i) returns an image no one else holds (a new decode per call, as
   * imageFolder's): the loader then gives the memory of images it fetched back as soon as the
   * batch's engine call has read them, instead of leaving them to the collector. Leave it unset
   * for a data set that hands out images it keeps. (What EncodedSample.decode returns is always
   * the loader's.)
   */
  readonly freshImages?: boolean;
}

/**
 * Decoding that the plan steers (imageFolder's `decode: "fast"`): a data set of compressed
 * images may hand the loader an EncodedSample instead of pixels. The loader draws the sample's
 * parameters on `shape` (the full image, as a full decode would give it, EXIF orientation
 * applied), asks the plan which window of the image the output reads and at what scale, and
 * decodes only that (libjpeg-turbo's region decoding and DCT scaling).
 */

/**
 * The part of an image to decode, in the full image's pixel coordinates (orientation applied):
 * rows [top, top + height) and columns [left, left + width), at 1/scale of the resolution.
 * The decoder may return a larger window (it rounds to the JPEG's block grid).
 */
export interface SourceWindow {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
  readonly scale: 1 | 2 | 4 | 8;
}

/**
 * Where decoded pixels sit in the full image: decoded pixel (r, c) covers the full image's
 * columns [left + c * scale, left + (c + 1) * scale) and rows [top + r * scale, top + (r + 1) * scale)
 * (the last row or column may cover less, where the image ends). A full decode is
 * { scale: 1, left: 0, top: 0 }.
 */
export interface SourceFrame {
  readonly scale: number;
  readonly left: number;
  readonly top: number;
}

export interface DecodedRegion {
  readonly image: Image;
  readonly frame: SourceFrame;
}

/** A sample not yet decoded: its full shape (from the file's header) and a decoder for any window. */
export interface EncodedSample {
  readonly label: number;
  readonly index: number;
  readonly path?: string;
  /** The full image's shape after decoding: height, width (orientation applied), channels. */
  readonly shape: { readonly height: number; readonly width: number; readonly channels: number };
  /** Decodes `window` (the whole image at scale 1 when absent); runs off the JavaScript thread. */
  decode(window?: SourceWindow): Promise<DecodedRegion>;
}
