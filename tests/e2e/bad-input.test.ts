import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/types.ts";
import { makeHome, runCli, startAgent, type TestHome } from "../support/cli.ts";

/**
 * Bad input written straight into the store, and hostile targets: each gets a clear report naming
 * the document and field, and the agent neither stops nor stops firing the good job.
 */
let home: TestHome;
let store: Store;
let server: ReturnType<typeof Bun.serve>;
const good: number[] = [];

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/good") {
        good.push(Date.now());
        return new Response("ok");
      }
      if (path === "/hold") return new Promise<Response>(() => {}); // holds the connection open
      if (path === "/loop") return Response.redirect(req.url, 302);
      if (path === "/endless") {
        // A body that never ends (and would be 200 MB and more): produced only as it is read.
        const chunk = new Uint8Array(64 * 1024).fill(97);
        return new Response(new ReadableStream({ pull: (c) => c.enqueue(chunk) }));
      }
      return new Response("?", { status: 404 });
    },
  });
  home = makeHome({ tz: "UTC", heartbeat_sec: 0.5, dead_after_sec: 2, lease_sec: 3, failover_step_sec: 1, secrets: { SINK: `http://127.0.0.1:${server.port}` } }, "fleetcron-bad");
  store = openSqliteStore(join(home.home, "fleetcron.db"));
});

afterAll(async () => {
  await store.close();
  await server.stop(true);
  home.cleanup();
});

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

test("invalid documents are reported once and skipped; hostile targets do not stop the good job", async () => {
  const sink = `http://127.0.0.1:${server.port}`;
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 200; i++) deep = { d: deep };
  await store.createJob({ name: "good", every: "1s", url: `${sink}/good` });
  await store.createJob({ name: "wrong types", hour: "9", minute: "x", url: 5 });
  await store.createJob({ name: "missing fields" });
  await store.createJob({ name: "huge", every: "1s", url: `${sink}/${"a".repeat(300_000)}` });
  await store.createJob({ name: "deep", every: "1s", url: `${sink}/good`, method: "POST", body: deep });
  await store.createJob({ name: "dollar", every: "1s", url: { $concat: ["http://", "x"] } });
  await store.createJob({ name: 42, every: "1s", url: `${sink}/good` });
  await store.createJob({ name: "hold", every: "1s", url: `${sink}/hold`, timeout_sec: 1 });
  await store.createJob({ name: "loop", every: "1s", url: `${sink}/loop` });
  await store.createJob({ name: "endless", every: "2s", url: `${sink}/endless`, timeout_sec: 1.5 });
  await store.createJob({ name: "extra keys from an old writer", every: "1s", url: `${sink}/good`, owner: "ops", legacy: { a: 1 } });
  await store.insertCommand({ _id: "garbage-1", type: "explode" as never, target: null, created_at: new Date(Date.now() + 1000) });

  const agent = startAgent(home, "agent");
  await agent.waitForLog("running: serial");
  const started = Date.now();
  await Bun.sleep(8000);
  expect(agent.proc.exitCode).toBeNull();
  expect(rssMb(agent.proc.pid)).toBeLessThan(300);
  expect(await agent.stop("SIGTERM")).toBe(0);
  const log = agent.log();

  // The good job (and the valid job with extra keys, also on /good) kept firing every second.
  const goodSeconds = new Set(good.filter((t) => t >= started + 1000).map((t) => Math.floor(t / 1000)));
  expect(goodSeconds.size).toBeGreaterThanOrEqual(6);

  // Each invalid document reported once, naming it and the field.
  for (const name of ["wrong types", "missing fields", "huge", "deep", "dollar"]) {
    expect(log.split(`job "${name}"`).length - 1).toBe(1);
  }
  expect(log).toMatch(/job "wrong types" .*invalid[\s\S]*hour/);
  expect(log).toContain("(unnamed"); // name: 42
  const list = JSON.parse((await runCli(home, ["jobs", "list", "--json"])).stdout).jobs as { name: string; valid: boolean; problems: { path: string }[] }[];
  const invalid = new Map(list.filter((j) => !j.valid).map((j) => [j.name, j.problems.map((p) => p.path)]));
  expect([...invalid.keys()]).toEqual(expect.arrayContaining(["wrong types", "missing fields", "huge", "deep", "dollar"]));
  expect(invalid.get("wrong types")).toEqual(expect.arrayContaining(["hour", "minute", "url"]));
  expect(list.find((j) => j.name === "extra keys from an old writer")?.valid).toBe(true);

  // Hostile targets ended as recorded errors, with reasons.
  const runs = JSON.parse((await runCli(home, ["runs", "--json", "--limit", "1000"])).stdout).runs as { job_name: string; status: string; error?: string }[];
  // (Every other "hold" occurrence is skipped: the one before it was still running, overlap: skip.)
  expect(runs.find((r) => r.job_name === "hold" && r.status === "error")?.error).toContain("no response within 1 s");
  expect(runs.find((r) => r.job_name === "loop")?.error).toContain("redirect");
  for (const name of ["hold", "loop"]) {
    const failed = runs.filter((r) => r.job_name === name && r.status === "error");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.error).toBeTruthy();
  }
  // A 200 OK whose body never ends is read up to the cap, then cut off: the record says so.
  const endless = runs.find((r) => r.job_name === "endless") as { status: string; steps: { response?: string }[] } | undefined;
  expect(endless?.status).toBe("success");
  expect(endless!.steps[0]!.response!.length).toBeLessThan(70 * 1024);
  expect(endless!.steps[0]!.response).toContain("truncated");
  const status = JSON.parse((await runCli(home, ["status", "--json"])).stdout);
  expect(status.jobs.invalid.map((j: { name: string }) => j.name)).toEqual(expect.arrayContaining(["wrong types", "dollar"]));
  // The garbage command was acknowledged, not obeyed and not fatal.
  const acks = await store.listAcks("garbage-1");
  expect(acks.length).toBe(1);
  expect(acks[0]!.error).toContain("unknown command type");
}, 60_000);
