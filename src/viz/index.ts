/**
 * Notebook views. Each returns a MIME bundle `{ data, metadata }` (plain data; the kernel's
 * display bridge sends it) that also answers `[Symbol.for("Jupyter.display")]()`.
 * Images are one composite PNG; plots are plotly figures with offline HTML and a text summary.
 */
export { showBatch, showAugmentations, describeParams } from "./images";
export type { BatchLike, BatchSource, PendingView, Denormalize, ShowBatchOptions, ShowAugmentationsOptions, AugmentFn, AugmentResult, Augmenter, DrawAt } from "./images";
export { plotSampler, plotTimings, plotTransfer } from "./plots";
export type { PlotSamplerOptions, SamplerSource, PlotTimingsOptions, TransferPoint } from "./plots";
export { progress, progressBundle, progressText, defaultProgressSink } from "./progress";
export type { ProgressOptions, ProgressSink, ProgressState } from "./progress";
export { plotlyScriptHtml, plotlyVersion, standaloneHtml, figureHtml, figureBundle } from "./plotly";
export { makeBundle, isBundle, PLOTLY_MIME, DISPLAY as JUPYTER_DISPLAY } from "../display/index";
export type { Bundle as VizBundle, MimeData, MimeMetadata, PlotlyFigure, PlotlyTrace } from "../display/index";

// A loader's batch shows itself as the showBatch grid (the loader stage cannot import this one).
import { registerView } from "../display/index";
import { showBatch as gridOf, type BatchLike as GridInput } from "./images";
registerView("batch", (batch) => gridOf(batch as GridInput));
export { transferBenchmark, DEFAULT_TRANSFER_SIZES } from "./transfer";
export type { TransferResult, TransferBenchmarkOptions } from "./transfer";
