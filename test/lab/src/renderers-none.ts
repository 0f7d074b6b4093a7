import type { IRenderMime } from "@jupyterlab/rendermime";
/** Lab without the plotly extension: the standard renderers only. */
export const extraRenderers: IRenderMime.IRendererFactory[] = [];
