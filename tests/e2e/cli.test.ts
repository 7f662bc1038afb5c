import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cliCommand, makeHome, runCli, type TestHome } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { seedDailyReport, seedDataPipeline } from "../fixtures/seed-jobs.ts";

/** The CLI as a user meets it: exit codes, messages that name file/job/field, --json on stdout. */
let home: TestHome;
let sink: Sink;

// The seed README's two example jobs, pasted into a jobs file unchanged.
const SEED_JOBS = [seedDailyReport(), seedDataPipeline()];

beforeAll(() => {
  sink = startSink();
  home = makeHome({ tz: "Asia/Seoul", max_serial: 10, secrets: { BASE_URL: sink.url, API_SECRET: "s3cr3t-token-value" } }, "fleetcron-cli");
});
afterAll(async () => {
  await sink.stop();
  home.cleanup();
});

function writeJobs(name: string, content: unknown): string {
  const path = join(home.dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

describe("jobs validate / apply", () => {
  test("the seed's example jobs validate and apply unchanged", async () => {
    const file = writeJobs("seed.json", SEED_JOBS);
    const validated = await runCli(home, ["jobs", "validate", file]);
    expect(validated.stderr).toBe("");
    expect(validated.exitCode).toBe(0);
    const applied = await runCli(home, ["jobs", "apply", file, "--json"]);
    expect(applied.exitCode).toBe(0);
    expect(JSON.parse(applied.stdout).changes).toEqual([
      { name: "Daily Report", change: "created" },
      { name: "Data Pipeline", change: "created" },
    ]);
    const again = await runCli(home, ["jobs", "apply", file, "--json"]);
    expect(JSON.parse(again.stdout).changes.map((c: { change: string }) => c.change)).toEqual(["unchanged", "unchanged"]);
  }, 30_000);

  test("an invalid file lists every problem by job and field, exits 1 and writes nothing", async () => {
    const file = writeJobs("bad.json", {
      jobs: [
        { name: "Good", every: "1m", url: "http://127.0.0.1:1/x" },
        { name: "Bad hour", hour: 25, minute: 0, url: "http://127.0.0.1:1/x" },
        { name: "Bad template", every: "5m", url: "{{NOPE}}/x" },
        { every: "1m", url: "http://127.0.0.1:1/x" },
      ],
    });
    const result = await runCli(home, ["jobs", "apply", file]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('job "Bad hour" › hour');
    expect(result.stderr).toContain("0-23");
    expect(result.stderr).toContain('job "Bad template" › url');
    expect(result.stderr).toContain("{{NOPE}}");
    expect(result.stderr).toContain("job #4 › name");
    expect(result.stderr).toContain("nothing written");
    const list = await runCli(home, ["jobs", "list", "--json"]);
    expect(JSON.parse(list.stdout).jobs.map((j: { name: string }) => j.name)).not.toContain("Good");

    const validate = await runCli(home, ["jobs", "validate", file, "--json"]);
    expect(validate.exitCode).toBe(1);
    const report = JSON.parse(validate.stdout);
    expect(report.valid).toBe(false);
    expect(report.problems.map((p: { job: string; path: string }) => `${p.job}:${p.path}`)).toEqual(
      expect.arrayContaining(["Bad hour:hour", "Bad template:url"]),
    );
  }, 30_000);

  test("a JSON syntax error names the file, line and column", async () => {
    const file = writeJobs("syntax.json", '[\n  { "name": "x",\n    "every": "1m" oops }\n]');
    const result = await runCli(home, ["jobs", "validate", file]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/syntax\.json:3:\d+/);
  });

  test("a missing file is bad usage: exit 2", async () => {
    const result = await runCli(home, ["jobs", "validate", join(home.dir, "nope.json")]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("nope.json");
  });
});

describe("listings", () => {
  test("jobs next shows local and UTC instants from --from", async () => {
    const result = await runCli(home, ["jobs", "next", "Daily Report", "--count", "2", "--from", "2026-03-01T00:00:00Z", "--json"]);
    expect(result.exitCode).toBe(0);
    const data = JSON.parse(result.stdout);
    expect(data.tz).toBe("Asia/Seoul");
    expect(data.fires.map((f: { utc: string }) => f.utc)).toEqual(["2026-03-01T00:30:00.000Z", "2026-03-02T00:30:00.000Z"]);
    expect(data.fires[0].local).toContain("09:30");
  });

  test("jobs trigger runs once now, records the run, masks secrets in what it records", async () => {
    const result = await runCli(home, ["jobs", "trigger", "Daily Report", "--json"]);
    expect(result.exitCode).toBe(0);
    const run = JSON.parse(result.stdout);
    expect(run.status).toBe("success");
    expect(run.trigger).toBe("manual");
    const delivered = sink.deliveries.find((d) => d.runId === run.run_id);
    expect(delivered?.headers.authorization).toBe("Bearer s3cr3t-token-value");
    const runs = await runCli(home, ["runs", "--job", "Daily Report", "--json"]);
    expect(runs.stdout).toContain(run._id);
    expect(runs.stdout).not.toContain("s3cr3t-token-value");
    expect(result.stdout).not.toContain("s3cr3t-token-value");
  }, 30_000);

  test("disable, enable, delete and an unknown name", async () => {
    expect((await runCli(home, ["jobs", "disable", "Data Pipeline"])).exitCode).toBe(0);
    const list = JSON.parse((await runCli(home, ["jobs", "list", "--json"])).stdout);
    expect(list.jobs.find((j: { name: string }) => j.name === "Data Pipeline").enabled).toBe(false);
    expect((await runCli(home, ["jobs", "enable", "Data Pipeline"])).exitCode).toBe(0);
    const unknown = await runCli(home, ["jobs", "show", "No Such Job"]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain('no job named "No Such Job"');
  }, 30_000);

  test("runs rejects an unknown status with exit 2", async () => {
    const result = await runCli(home, ["runs", "--status", "weird"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--status must be one of");
  });

  test("an unknown command is bad usage: exit 2", async () => {
    const result = await runCli(home, ["frobnicate"]);
    expect(result.exitCode).toBe(2);
  });

  test("status and machines work with no agent yet", async () => {
    const status = await runCli(home, ["status", "--json"]);
    expect(status.exitCode).toBe(0);
    const data = JSON.parse(status.stdout);
    expect(data.store.kind).toBe("sqlite");
    expect(data.jobs.total).toBe(2);
    const machines = await runCli(home, ["machines", "--json"]);
    expect(JSON.parse(machines.stdout).machines).toEqual([]);
  }, 30_000);
});

describe("large output", () => {
  test("a large --json document reaches a slow reader whole (no truncation at exit)", async () => {
    const other = makeHome({ tz: "UTC" }, "fleetcron-cli-big");
    try {
      const file = join(other.dir, "many.json");
      writeFileSync(file, JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ name: `job-${i}`, every: "1h", url: "http://127.0.0.1:1/" }))));
      expect((await runCli(other, ["jobs", "apply", file])).exitCode).toBe(0);
      // A reader that starts late, through a shell pipe (the kernel's 64 KiB buffer fills first).
      const shell = `${cliCommand().map((a) => `'${a}'`).join(" ")} jobs list --json | (sleep 1; cat)`;
      const proc = Bun.spawn(["sh", "-c", shell], { env: other.env, stdout: "pipe", stderr: "pipe" });
      const text = await new Response(proc.stdout).text();
      expect(await proc.exited).toBe(0);
      expect(text.length).toBeGreaterThan(200_000);
      expect(JSON.parse(text).jobs).toHaveLength(1000);
    } finally {
      other.cleanup();
    }
  }, 60_000);
});

describe("config", () => {
  test("a config with wrong types names the file, every key and what is valid: exit 2", async () => {
    const bad = join(home.dir, "bad-config.json");
    writeFileSync(bad, JSON.stringify({ max_serial: "ten", tz: "Mars/Base", heartbeat_sec: -1, colour: "red" }), { mode: 0o600 });
    const result = await runCli(home, ["--config", bad, "config", "check"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("bad-config.json");
    expect(result.stderr).toContain("max_serial");
    expect(result.stderr).toContain("tz");
    expect(result.stderr).toContain("heartbeat_sec");
  });

  test("a config readable by others gets a warning; check reports the store", async () => {
    chmodSync(home.configPath, 0o644);
    const result = await runCli(home, ["config", "check"]);
    chmodSync(home.configPath, 0o600);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain("chmod 600");
    expect(result.stdout).toContain("reachable");
  });
});
