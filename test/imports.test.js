// The stages import one way: this parses every import of src/ and kernel/ (static imports,
// re-exports and require() of relative paths) and fails on any cycle, naming it.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.join(__dirname, "..");

function sources(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function resolve(from, spec) {
  if (!spec.startsWith(".")) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base + ".ts", path.join(base, "index.ts"), base]) if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  return undefined;
}

function edges(file) {
  const text = fs.readFileSync(file, "utf8");
  const specs = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/g)) specs.push(m[1]);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+["']([^"']+)["']/g)) specs.push(m[1]);
  for (const m of text.matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)) specs.push(m[1]);
  return specs.map((s) => resolve(file, s)).filter(Boolean);
}

function findCycle(graph) {
  const state = new Map();
  const stack = [];
  const visit = (n) => {
    state.set(n, 1);
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 1) return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 2);
    return undefined;
  };
  for (const n of graph.keys()) {
    if (!state.has(n)) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return undefined;
}

const graphOf = (files) => new Map(files.map((f) => [f, edges(f)]));
const rel = (c) => c.map((f) => path.relative(ROOT, f)).join(" -> ");

test("no import cycle in src/ and kernel/", () => {
  const files = [...sources(path.join(ROOT, "src")), ...sources(path.join(ROOT, "kernel"))];
  assert.ok(files.length > 40, `found only ${files.length} source files`);
  const cycle = findCycle(graphOf(files));
  assert.equal(cycle, undefined, cycle && `import cycle: ${rel(cycle)}`);
});

test("the cycle finder names a cycle when there is one", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(findCycle(g), ["a", "b", "c", "a"]);
  assert.equal(findCycle(new Map([["a", ["b"]], ["b", []]])), undefined);
});

test("a stage imports only earlier stages (data -> sampling -> transforms -> engines -> loader -> device -> memory -> viz)", () => {
  const order = ["display", "data", "sampling", "transforms", "engines", "loader", "device", "memory", "viz"];
  const src = path.join(ROOT, "src");
  const stageOf = (f) => path.relative(src, f).split(path.sep)[0];
  for (const [file, deps] of graphOf(sources(src))) {
    const a = order.indexOf(stageOf(file));
    if (a < 0) continue;
    for (const d of deps) {
      const b = order.indexOf(stageOf(d));
      if (b < 0) continue;
      assert.ok(b <= a, `${path.relative(ROOT, file)} (stage ${order[a]}) imports ${path.relative(ROOT, d)} (later stage ${order[b]})`);
    }
  }
});
