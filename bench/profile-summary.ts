/**
 * Summarizes a V8/Bun .cpuprofile by sample counts (not by time deltas, which a descheduled process
 * on a busy machine inflates): self samples per function, and total samples per source area
 * (FleetCron's src/ by file, the mongodb driver, bson, Bun internals).
 * Usage: bun bench/profile-summary.ts bench/results/profiles/<name>.cpuprofile
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const file = process.argv[2];
if (!file) throw new Error("usage: bun bench/profile-summary.ts FILE.cpuprofile");
const profile = JSON.parse(await Bun.file(file).text()) as { nodes: Node[]; samples: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const area = (url: string) => {
  if (!url) return "(native/idle)";
  const m = /\/src\/(.*)$/.exec(url);
  if (m && !url.includes("node_modules")) return `src/${m[1]}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  return url.startsWith("node:") || url.startsWith("internal:") ? "bun/node internals" : url;
};

const self = new Map<string, number>();
const inclusiveArea = new Map<string, number>();
const inclusiveSrc = new Map<string, number>();
let total = 0;
let idle = 0;
for (const id of profile.samples) {
  const node = byId.get(id)!;
  const name = node.callFrame.functionName || "(anonymous)";
  if (name === "(idle)" || name === "(program)" || name === "(garbage collector)") {
    if (name === "(idle)") idle++;
    else self.set(name, (self.get(name) ?? 0) + 1);
    if (name === "(idle)") continue;
  }
  total++;
  const key = `${name} ${area(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + 1);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const frame = byId.get(cur)!.callFrame;
    const a = area(frame.url);
    if (!seen.has(a)) {
      seen.add(a);
      inclusiveArea.set(a, (inclusiveArea.get(a) ?? 0) + 1);
    }
    if (a.startsWith("src/")) {
      const fn = `${frame.functionName || "(anonymous)"} ${a}:${frame.lineNumber + 1}`;
      if (!seen.has(fn)) {
        seen.add(fn);
        inclusiveSrc.set(fn, (inclusiveSrc.get(fn) ?? 0) + 1);
      }
    }
  }
}
const pct = (n: number) => `${((n / total) * 100).toFixed(1)}%`;
console.log(`${total} busy samples, ${idle} idle\n\nTop self (busy samples):`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${pct(v).padStart(6)}  ${v}  ${k}`);
console.log("\nInclusive by area (a sample counts once per area on its stack):");
for (const [k, v] of [...inclusiveArea].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${pct(v).padStart(6)}  ${v}  ${k}`);
console.log("\nInclusive by FleetCron function (src/):");
for (const [k, v] of [...inclusiveSrc].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${pct(v).padStart(6)}  ${v}  ${k}`);
export {};
