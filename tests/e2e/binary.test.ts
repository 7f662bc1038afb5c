import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { eventually } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * The compiled binary, as a user gets it: copied alone into an empty folder (no source, no
 * node_modules beside it), it writes a config, applies a job, runs the agent that delivers to a
 * local sink, and stops cleanly on SIGTERM. Builds the host's binary with build.ts once, unless
 * FLEETCRON_BIN names one already built (CI builds it in its own step and passes it here).
 */
const ROOT = resolve(import.meta.dir, "../..");
const HOST_TARGET = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
const SUPPORTED = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"].includes(HOST_TARGET);

let work: string;
let folder: string;
let binary: string;
let sink: Sink;
let env: Record<string, string>;

function spawn(args: string[], options: { timeoutMs?: number } = {}) {
  const result = Bun.spawnSync([binary, ...args], { cwd: folder, env, stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: options.timeoutMs ?? 15_000 });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

beforeAll(() => {
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
}, 120_000);

afterAll(async () => {
  if (!SUPPORTED) return;
  await sink.stop();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!SUPPORTED)(`compiled binary (${HOST_TARGET})`, () => {
  test("--version names the version and the build target, not a source run", () => {
    const result = spawn(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toStartWith(`fleetcron ${pkg.version}`);
    expect(result.stdout.trim()).toEndWith(HOST_TARGET);
    expect(result.stdout).not.toContain("(source)");
  });

  test("from an empty folder: config init, jobs apply, run delivers to the sink, SIGTERM exits 0", async () => {
    expect(readdirSync(folder)).toEqual(["fleetcron"]);
    const init = spawn(["config", "init"]);
    expect(init.stderr).toBe("");
    expect(init.exitCode).toBe(0);
    expect(readdirSync(folder).sort()).toEqual(["fleetcron", "fleetcron.config.json"]);

    writeFileSync(join(folder, "jobs.json"), JSON.stringify([{ name: "Tick", every: "1s", url: `${sink.url}/tick?from=binary` }]));
    const applied = spawn(["jobs", "apply", "jobs.json", "--json"]);
    expect(applied.exitCode).toBe(0);
    expect(JSON.parse(applied.stdout).changes).toEqual([{ name: "Tick", change: "created" }]);

    const logPath = join(work, "agent.log");
    const fd = openSync(logPath, "a");
    const agent = Bun.spawn([binary, "run"], { cwd: folder, env, stdout: fd, stderr: fd, stdin: "ignore" });
    closeSync(fd);
    try {
      await eventually(() => sink.deliveries.filter((d) => d.path === "/tick").length >= 3 || agent.exitCode !== null, 25_000, "3 deliveries from the binary's agent");
      expect(agent.exitCode).toBeNull();
      const ticks = sink.deliveries.filter((d) => d.path === "/tick");
      expect(ticks.length).toBeGreaterThanOrEqual(3);
      expect(ticks.every((d) => d.runId.length > 0 && d.query.from === "binary")).toBe(true);
      expect(ticks[0]!.headers["user-agent"]).toBe(`FleetCron/${pkg.version}`);
      // Exactly once per occurrence, even from one agent.
      expect([...sink.countsByRunId().values()].every((n) => n === 1)).toBe(true);
    } finally {
      if (agent.exitCode === null) agent.kill("SIGTERM");
    }
    const exitCode = await Promise.race([agent.exited, Bun.sleep(20_000).then(() => "timeout")]);
    expect({ exitCode, log: exitCode === 0 ? "" : readFileSync(logPath, "utf8") }).toEqual({ exitCode: 0, log: "" });

    // The embedded store the agent wrote is the one the CLI reads.
    const runs = spawn(["runs", "--job", "Tick", "--json"]);
    expect(runs.exitCode).toBe(0);
    const statuses = (JSON.parse(runs.stdout).runs as { status: string }[]).map((r) => r.status);
    expect(statuses.filter((s) => s === "success").length).toBeGreaterThanOrEqual(3);
  }, 60_000);

  test("service install --dry-run points the unit at this binary, not at bun", () => {
    const result = spawn(["service", "install", "--dry-run", "--user", "--json"]);
    expect(result.exitCode).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.file.content).toContain(`ExecStart="${binary}" --config "${join(folder, "fleetcron.config.json")}" run`);
    expect(plan.notes.join(" ")).not.toContain("running from source");
  });
});
