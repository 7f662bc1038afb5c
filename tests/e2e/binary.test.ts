import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { eventually } from "../support/cli.ts";
import { startMongo, type TestMongo } from "../support/ferretdb.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * The compiled binary, as a user gets it: copied alone into an empty folder (no source, no
 * node_modules beside it), it writes a config, applies a job, runs the agent that delivers to a
 * local sink, and stops cleanly on SIGTERM, on the embedded store and on MongoDB (FerretDB or
 * MONGODB_URI; required in CI). Builds the host's binary with build.ts once, unless FLEETCRON_BIN
 * names one already built.
 */
const ROOT = resolve(import.meta.dir, "../..");
const HOST_TARGET = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
const SUPPORTED = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"].includes(HOST_TARGET);

let work: string;
let folder: string;
let binary: string;
let sink: Sink;
let env: Record<string, string>;
// Started when the file loads, so a missing server is a reported skip (or, in CI, a failure),
// never a test that returns early and counts as a pass.
let mongo: TestMongo | null = null;
let mongoSkipReason = "";
if (SUPPORTED) {
  try {
    mongo = await startMongo();
  } catch (err) {
    mongoSkipReason = err instanceof Error ? err.message : String(err);
    if (process.env.CI) throw new Error(`the binary's MongoDB run must happen in CI, but no server is available: ${mongoSkipReason}`);
    console.warn(`SKIPPING the binary on MongoDB: ${mongoSkipReason}`);
  }
}

function spawn(args: string[], options: { timeoutMs?: number } = {}) {
  const result = Bun.spawnSync([binary, ...args], { cwd: folder, env, stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: options.timeoutMs ?? 15_000 });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

beforeAll(async () => {
  if (!SUPPORTED) return;
  work = mkdtempSync(join(tmpdir(), "fleetcron-binary-"));
  let built = process.env.FLEETCRON_BIN;
  if (!built) {
    const out = join(work, "dist");
    const build = Bun.spawnSync([process.execPath, join(ROOT, "build.ts"), "--target", HOST_TARGET, "--outdir", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`build.ts failed (${build.exitCode}):\n${build.stdout}${build.stderr}`);
    built = join(out, `fleetcron-${HOST_TARGET}`);
  }
  folder = join(work, "empty folder");
  mkdirSync(folder);
  binary = join(folder, "fleetcron");
  copyFileSync(built, binary);
  chmodSync(binary, 0o755);
  // Nothing of the checkout leaks in: no FLEETCRON_* from the caller, HOME and FLEETCRON_HOME in the temp folder.
  env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "user"), FLEETCRON_HOME: join(work, "home"), NO_COLOR: "1", TZ: "UTC" };
  sink = startSink();
}, 180_000);

afterAll(async () => {
  if (!SUPPORTED) return;
  await sink.stop();
  await mongo?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** config init (then `edit` the written config), jobs apply, run until 3 deliveries, SIGTERM → 0, runs readable by the CLI. */
async function endToEnd(job: string, edit: (config: Record<string, unknown>) => Record<string, unknown>): Promise<void> {
  const configPath = join(folder, "fleetcron.config.json");
  const init = spawn(["config", "init", "--force"]);
  expect(init.stderr).toBe("");
  expect(init.exitCode).toBe(0);
  writeFileSync(configPath, JSON.stringify(edit(JSON.parse(readFileSync(configPath, "utf8"))), null, 2), { mode: 0o600 });
  // Beside the config, the example jobs its "next:" line names: built into the binary, so they exist here.
  expect(readdirSync(folder).sort()).toEqual(["fleetcron", "fleetcron.config.json", "jobs.example.json"]);
  expect(init.stdout).toContain(`jobs apply ${join(folder, "jobs.example.json")}`);
  const example = spawn(["jobs", "validate", join(folder, "jobs.example.json")]);
  expect({ code: example.exitCode, out: example.stdout }).toMatchObject({ code: 0 });

  const path = `/${job.replaceAll(" ", "-")}`;
  const jobsFile = join(work, "jobs.json");
  writeFileSync(jobsFile, JSON.stringify([{ name: job, every: "1s", url: `${sink.url}${path}?from=binary` }]));
  const applied = spawn(["jobs", "apply", jobsFile, "--json"]);
  // Only what issue 12 asks to be said: the store connect (MongoDB) and that no agent is alive yet.
  const said = applied.stderr.split("\n").filter(Boolean).map((l) => l.replace(/^\S+ (info|warn) +/, ""));
  expect(said.filter((l) => !l.startsWith("connecting to mongodb://") && !l.startsWith("no agent is alive on this store"))).toEqual([]);
  expect(said.some((l) => l.startsWith("no agent is alive on this store"))).toBe(true);
  expect(applied.exitCode).toBe(0);
  expect(JSON.parse(applied.stdout).changes).toEqual([{ name: job, change: "created" }]);

  const logPath = join(work, `${path.slice(1)}.log`);
  const fd = openSync(logPath, "a");
  const agent = Bun.spawn([binary, "run"], { cwd: folder, env, stdout: fd, stderr: fd, stdin: "ignore" });
  closeSync(fd);
  const mine = () => sink.deliveries.filter((d) => d.path === path);
  try {
    await eventually(() => mine().length >= 3 || agent.exitCode !== null, 25_000, `3 deliveries of "${job}" from the binary's agent`);
    expect({ exited: agent.exitCode, log: agent.exitCode === null ? "" : readFileSync(logPath, "utf8") }).toEqual({ exited: null, log: "" });
    expect(mine().every((d) => d.runId.length > 0 && d.query.from === "binary")).toBe(true);
    expect(mine()[0]!.headers["user-agent"]).toBe(`FleetCron/${pkg.version}`);
    // Exactly once per occurrence, even from one agent.
    expect(new Set(mine().map((d) => d.runId)).size).toBe(mine().length);
  } finally {
    if (agent.exitCode === null) agent.kill("SIGTERM");
  }
  const exitCode = await Promise.race([agent.exited, Bun.sleep(20_000).then(() => "timeout")]);
  expect({ exitCode, log: exitCode === 0 ? "" : readFileSync(logPath, "utf8") }).toEqual({ exitCode: 0, log: "" });

  // The store the agent wrote is the one the CLI reads.
  const runs = spawn(["runs", "--job", job, "--json"]);
  expect(runs.exitCode).toBe(0);
  const statuses = (JSON.parse(runs.stdout).runs as { status: string }[]).map((r) => r.status);
  expect(statuses.filter((st) => st === "success").length).toBeGreaterThanOrEqual(3);
}

describe.skipIf(!SUPPORTED)(`compiled binary (${HOST_TARGET})${SUPPORTED ? "" : " — SKIPPED: build.ts has no target for this host"}`, () => {
  test("--version names the version and the build target, not a source run", () => {
    const result = spawn(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toStartWith(`fleetcron ${pkg.version}`);
    expect(result.stdout.trim()).toEndWith(HOST_TARGET);
    expect(result.stdout).not.toContain("(source)");
  });

  test("from an empty folder: config init, jobs apply, run delivers to the sink, SIGTERM exits 0 (embedded store)", async () => {
    expect(readdirSync(folder)).toEqual(["fleetcron"]);
    await endToEnd("Tick", (config) => config);
  }, 60_000);

  test.skipIf(!mongo)(`the same on MongoDB (FerretDB or MONGODB_URI): the driver is inside the binary${mongo ? "" : ` — SKIPPED: ${mongoSkipReason.split("\n")[0]}`}`, async () => {
    const dbName = mongo!.dbName("binary");
    await endToEnd("Mongo tick", (config) => ({ ...config, mongodb_uri: mongo!.uri, db_name: dbName }));
    expect(spawn(["config", "check", "--json"]).stdout).toContain('"kind": "mongo"');
  }, 60_000);

  test("service install --dry-run points the unit at this binary, not at bun", () => {
    const result = spawn(["service", "install", "--dry-run", "--user", "--json"]);
    expect(result.exitCode).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.file.content).toContain(`ExecStart="${binary}" --config "${join(folder, "fleetcron.config.json")}" run`);
    expect(plan.notes.join(" ")).not.toContain("running from source");
  });
});
