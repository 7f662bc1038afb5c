#!/usr/bin/env bun
/**
 * `bun run build [--target linux-x64,...]`: one self-contained binary per target in dist/, with the
 * version and git revision built in, and a SHA256SUMS file.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "./package.json" with { type: "json" };

const ALL_TARGETS = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64", "windows-x64"] as const;
type Target = (typeof ALL_TARGETS)[number];

function requestedTargets(argv: string[]): Target[] {
  const flag = argv.indexOf("--target");
  if (flag === -1) return [...ALL_TARGETS];
  const wanted = (argv[flag + 1] ?? "").split(",").filter(Boolean);
  const unknown = wanted.filter((t) => !(ALL_TARGETS as readonly string[]).includes(t));
  if (unknown.length || wanted.length === 0) {
    console.error(`--target takes a comma-separated list of: ${ALL_TARGETS.join(", ")} (got "${argv[flag + 1] ?? ""}")`);
    process.exit(2);
  }
  return wanted as Target[];
}

function gitRevision(): string {
  const result = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { stdout: "pipe", stderr: "ignore" });
  return result.exitCode === 0 ? result.stdout.toString().trim() : "";
}

const outDir = join(import.meta.dir, "dist");
const targets = requestedTargets(process.argv.slice(2));
const revision = gitRevision();
mkdirSync(outDir, { recursive: true });

const sums: string[] = [];
for (const target of targets) {
  const file = join(outDir, `fleetcron-${target}${target.startsWith("windows") ? ".exe" : ""}`);
  rmSync(file, { force: true });
  const started = performance.now();
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "src/main.ts")],
    compile: { target: `bun-${target}` as Bun.Build.CompileTarget, outfile: file },
    minify: true,
    sourcemap: "none",
    define: {
      FLEETCRON_BUILD_TARGET: JSON.stringify(target),
      FLEETCRON_GIT_REVISION: JSON.stringify(revision),
    },
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    process.exit(1);
  }
  const bytes = statSync(file).size;
  sums.push(`${createHash("sha256").update(readFileSync(file)).digest("hex")}  ${file.split("/").pop()}`);
  console.log(`${file.split("/").pop()}  ${(bytes / 1024 / 1024).toFixed(1)} MiB  ${Math.round(performance.now() - started)} ms`);
}
writeFileSync(join(outDir, "SHA256SUMS"), `${sums.join("\n")}\n`);
console.log(`fleetcron ${pkg.version}${revision ? ` (${revision})` : ""}: ${targets.length} binary(ies) and SHA256SUMS in ${outDir}`);
