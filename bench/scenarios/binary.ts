import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { MAIN, ROOT } from "../lib/fleetcron.ts";
import { median, round } from "../lib/util.ts";

/** Size of each built binary in dist/ (when `bun run build` has made them) and cold start of `--version`. */
export interface BinaryResult {
  dist: { file: string; mb: number; built: string }[];
  cold_start_ms: { what: string; median_ms: number | null; runs: number; version: string }[];
  note?: string;
}

function coldStart(cmd: string[], runs = 10): { median: number | null; version: string } {
  const times: number[] = [];
  let version = "";
  Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" }); // page cache warm, as on a machine that runs it
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    times.push(performance.now() - t0);
    if (r.exitCode !== 0) return { median: null, version: r.stderr.toString().trim().slice(0, 200) };
    version = r.stdout.toString().trim();
  }
  return { median: round(median(times), 1), version };
}

export async function binary(): Promise<BinaryResult> {
  const distDir = join(ROOT, "dist");
  const dist = existsSync(distDir)
    ? readdirSync(distDir)
        .filter((f) => f.startsWith("fleetcron-"))
        .map((file) => {
          const st = statSync(join(distDir, file));
          return { file, mb: round(st.size / 1e6, 1)!, built: st.mtime.toISOString() };
        })
    : [];
  const cold: BinaryResult["cold_start_ms"] = [];
  const arch = process.arch === "x64" ? "x64" : process.arch === "arm64" ? "arm64" : null;
  const native = arch && process.platform === "linux" ? join(distDir, `fleetcron-linux-${arch}`) : null;
  if (native && existsSync(native)) {
    const r = coldStart([native, "--version"]);
    cold.push({ what: `dist/fleetcron-linux-${arch} --version`, median_ms: r.median, runs: 10, version: r.version });
  }
  const src = coldStart([process.execPath, MAIN, "--version"]);
  cold.push({ what: "bun src/main.ts --version", median_ms: src.median, runs: 10, version: src.version });
  return { dist, cold_start_ms: cold, ...(dist.length === 0 ? { note: "no dist/: run `bun run build` first for binary sizes" } : {}) };
}
