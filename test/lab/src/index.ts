/**
 * A JupyterLab 4 front end for batchlab's browser tests, built from Lab's own npm packages: the
 * services (kernels, contents), the rendermime registry with Lab's standard renderers (and
 * jupyterlab-plotly's renderer in the "plotly" build), and Lab's OutputArea, which applies a
 * kernel's iopub messages (display_data, update_display_data by display id, clear_output, ...)
 * as Lab's notebook does, and @jupyterlab/notebook's NotebookModel to reopen a saved notebook.
 * Trust works as in Lab: live outputs are trusted; outputs reopened from a saved notebook are
 * not (the HTML renderer then sanitizes and runs no scripts).
 *
 * The page is driven from Node over the DevTools protocol through `window.batchlabLab`.
 */
import { PageConfig } from "@jupyterlab/coreutils";
import { ContentsManager, KernelAPI, KernelConnection, ServerConnection, type Kernel } from "@jupyterlab/services";
import { RenderMimeRegistry, standardRendererFactories, type IRenderMime } from "@jupyterlab/rendermime";
import { OutputArea, OutputAreaModel } from "@jupyterlab/outputarea";
import { Widget } from "@lumino/widgets";
import { Sanitizer } from "@jupyterlab/apputils";
import { NotebookModel } from "@jupyterlab/notebook";
import type { ICodeCellModel } from "@jupyterlab/cells";
import "@jupyterlab/theme-light-extension/style/variables.css";
import "@jupyterlab/rendermime/style/index.css";
import "@jupyterlab/outputarea/style/index.css";
import { extraRenderers } from "batchlab-lab-renderers";

interface CellResult {
  index: number;
  status: string;
  ename?: string;
  evalue?: string;
  outputs: number;
}

const settings = ServerConnection.makeSettings({ baseUrl: PageConfig.getBaseUrl(), token: PageConfig.getToken(), appendToken: true });
// Kernels through the REST API and one connection each, not a KernelManager: the manager polls
// GET /api/kernels, which Debian's jupyter-server 1.23 can answer with a 500 while a kernel is
// shutting down (a server-side race the page would log as an error).
async function startKernel(name: string): Promise<Kernel.IKernelConnection> {
  const model = await KernelAPI.startNew({ name }, settings);
  return new KernelConnection({ model, serverSettings: settings });
}
const contents = new ContentsManager({ serverSettings: settings });
// Lab's own sanitizer, as JupyterLab's app gives its registry (untrusted HTML goes through it)
const rendermime = new RenderMimeRegistry({ initialFactories: standardRendererFactories, sanitizer: new Sanitizer() });
// a mime extension's renderer at the rank its extension declares (jupyterlab-plotly: 0, before HTML's 50)
for (const f of extraRenderers) rendermime.addFactory(f as IRenderMime.IRendererFactory, 0);

const root = document.getElementById("notebook")!;
let kernel: Kernel.IKernelConnection | null = null;
const areas: OutputArea[] = [];
/** The notebook run() ran last, and each code cell's output model, for rerun() and save(). */
let current: { nb: Awaited<ReturnType<typeof load>>; models: OutputAreaModel[] } | null = null;

function clear(): void {
  for (const a of areas.splice(0)) a.dispose();
  root.textContent = "";
}

/** A cell as Lab shows it: its source, then its OutputArea. */
function addCell(source: string, model: OutputAreaModel, index: number): OutputArea {
  const cell = document.createElement("div");
  cell.className = "bl-cell";
  cell.dataset.cell = String(index);
  const pre = document.createElement("pre");
  pre.className = "bl-source";
  pre.textContent = source;
  cell.appendChild(pre);
  root.appendChild(cell);
  const area = new OutputArea({ model, rendermime });
  area.addClass("bl-outputs");
  Widget.attach(area, cell);
  areas.push(area);
  return area;
}

const text = (s: string | string[]): string => (Array.isArray(s) ? s.join("") : s);

async function load(path: string): Promise<{ cells: Array<{ cell_type: string; source: string | string[]; outputs?: unknown[] }> }> {
  const m = await contents.get(path, { type: "notebook", content: true });
  return m.content;
}

const api = {
  plotlyRenderer: extraRenderers.length > 0,

  /** Runs every code cell of the notebook at `path` in a fresh batchlab kernel (live, trusted); saves it with its outputs to `saveAs`. */
  async run(path: string, saveAs: string): Promise<CellResult[]> {
    clear();
    const nb = await load(path);
    if (kernel) await kernel.shutdown();
    kernel = await startKernel("batchlab");
    current = { nb, models: [] };
    const results: CellResult[] = [];
    let k = 0;
    for (const cell of nb.cells) {
      if (cell.cell_type !== "code") continue;
      const model = new OutputAreaModel({ trusted: true });
      current.models.push(model);
      const area = addCell(text(cell.source), model, k);
      area.future = kernel.requestExecute({ code: text(cell.source), stop_on_error: true });
      const reply = await area.future.done;
      const c = reply.content as { status: string; ename?: string; evalue?: string };
      results.push({ index: k, status: c.status, ename: c.ename, evalue: c.evalue, outputs: model.length });
      cell.outputs = model.toJSON() as unknown[];
      k++;
      if (c.status !== "ok") break;
    }
    await contents.save(saveAs, { type: "notebook", format: "json", content: nb });
    return results;
  },

  /** Runs code cell `k` of the last run() again in the same kernel, into its own output area (Lab's Shift-Enter on it). */
  async rerun(k: number): Promise<string> {
    if (!kernel || !current) throw new Error("rerun() before run()");
    const area = areas[k]!;
    area.model.clear();
    const code = text(current.nb.cells.filter((c) => c.cell_type === "code")[k]!.source);
    area.future = kernel.requestExecute({ code, stop_on_error: true });
    return ((await area.future.done).content as { status: string }).status;
  },

  /** Saves the last run() notebook with every cell's outputs as they are now. */
  async save(saveAs: string): Promise<void> {
    if (!current) throw new Error("save() before run()");
    let k = 0;
    for (const cell of current.nb.cells) if (cell.cell_type === "code" && k < current.models.length) cell.outputs = current.models[k++]!.toJSON() as unknown[];
    await contents.save(saveAs, { type: "notebook", format: "json", content: current.nb });
  },

  /** The id of the kernel run() started, for a second page to attach to. */
  kernelId(): string {
    if (!kernel) throw new Error("kernelId() before run()");
    return kernel.id;
  },

  /**
   * A second page on the same kernel: connects to the running kernel `id` (as a second browser
   * tab on the same notebook does) and runs `code` in it, live and trusted, into a new cell.
   */
  async attachAndRun(id: string, code: string): Promise<string> {
    clear();
    const model = await KernelAPI.getKernelModel(id, settings);
    if (!model) throw new Error(`no kernel ${id}`);
    const conn = new KernelConnection({ model, serverSettings: settings });
    const area = addCell(code, new OutputAreaModel({ trusted: true }), 0);
    area.future = conn.requestExecute({ code, stop_on_error: true });
    const status = ((await area.future.done).content as { status: string }).status;
    conn.dispose(); // closes this page's connection; the kernel keeps running for the first page
    return status;
  },

  /**
   * Opens the saved notebook at `path` as Lab does: its JSON read into @jupyterlab/notebook's
   * NotebookModel, whose cells keep their outputs in OutputAreaModels; a notebook Lab has no
   * signature for is untrusted (`trusted` false), so HTML is sanitized and scripts do not run.
   */
  async reopen(path: string, trusted = false): Promise<number> {
    clear();
    const nb = await load(path);
    const model = new NotebookModel();
    model.fromJSON(nb as never);
    let k = 0;
    for (let i = 0; i < model.cells.length; i++) {
      const cell = model.cells.get(i);
      if (cell.type !== "code") continue;
      const code = cell as ICodeCellModel;
      code.trusted = trusted;
      addCell(code.sharedModel.getSource(), code.outputs as OutputAreaModel, k++);
    }
    return k;
  },

  /** Lab's "Create New View for Output": the same outputs rendered again in a second area, below. */
  secondView(cellIndex: number): void {
    const area = areas[cellIndex]!;
    const copy = new OutputAreaModel({ trusted: area.model.trusted, values: area.model.toJSON() });
    addCell("(second view of cell " + cellIndex + ")", copy, 1000 + cellIndex);
  },

  async shutdown(): Promise<void> {
    if (kernel) await kernel.shutdown();
    kernel = null;
  },
};

(window as unknown as { batchlabLab: typeof api }).batchlabLab = api;
document.body.dataset.ready = "1";
