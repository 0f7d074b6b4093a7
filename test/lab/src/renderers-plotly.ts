import type { IRenderMime } from "@jupyterlab/rendermime";
import { rendererFactory } from "jupyterlab-plotly/lib/plotly-renderer";
/** Lab with the jupyterlab-plotly extension: its renderer for application/vnd.plotly.v1+json, ranked first (rank 0) as the extension registers it. */
export const extraRenderers: IRenderMime.IRendererFactory[] = [rendererFactory as unknown as IRenderMime.IRendererFactory];
