import { existsSync } from "node:fs";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openMongoStore } from "../../src/store/mongo.ts";
import type { RunRecord } from "../../src/store/types.ts";
import { makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startMongo } from "../support/ferretdb.ts";

/**
 * The chaos run (issue 6): three agents on FerretDB with a mix of jobs, while a driver kills and
 * restarts agents, pauses one longer than its lease, stops the store, and runs one agent with its
 * clock 2 s ahead (libfaketime, not a hook in product code). Then the sink is reconciled against
 * job_runs, on every step's path and whatever the answer's status:
 * - a repeat is allowed only as attempt n+1 of the same run id (same Idempotency-Key) after attempt
 *   n was recorded `lost`, and a lost attempt sends nothing after it was marked lost (fencing);
 *   within one attempt, only the job's own retries, and nothing after a success;
 * - every occurrence is delivered (its last attempt succeeded), except within a store outage and
 *   the catch-up just after it, where a `missed`/`skipped`/`error` record with a reason accounts
 *   for it, and `slow` (overlap: skip) occurrences skipped as overlapping while a killed or paused
 *   agent's attempt still held its lease (or its successor ran); a `lost` attempt without a
 *   successor is never accepted;
 * - the skewed agent really runs 2 s ahead: `machines` shows its clock offset near 2 s, with a warning.
 */
export interface ChaosOptions {
  durationMs: number;
  /** Pause between faults (random within the range). */
  faultGapMs: [number, number];
  /** How long the store stays down (random within the range). */
  storeOutageMs: [number, number];
  log?: (line: string) => void;
  seed?: number;
}

export interface ChaosReport {
  occurrences: number;
  /** Delivered: the last attempt succeeded, with no repeat anywhere. */
  deliveredOnce: number;
  /** Delivered after a lost attempt was re-run as attempt n+1 (same run id). */
  rerunAfterLostLease: number;
  /** Not delivered, inside a store outage or its catch-up, with a reason recorded: by final status. */
  accounted: Record<string, number>;
  duplicates: string[];
  unaccounted: string[];
  faults: Record<string, number>;
  /** When each fault happened, ms since epoch (the store outages excuse non-delivery). */
  faultWindows: FaultWindow[];
  takeovers: number;
  clockSkewedAgent: boolean;
  /** `fleetcron machines --json`, read while every agent ran: clock offset and warning per machine. */
  clocks: Record<string, { clock_offset_ms: number | null; clock_warning: string | null }>;
  /** Agents that did not exit within 30 s of SIGTERM, with the end of their logs. */
  stuckStops: string[];
}

export interface FaultWindow {
  kind: "kill+restart" | "pause>lease" | "store outage";
  from: number;
  to: number;
}

interface Arrival {
  runId: string;
  key: string | null;
  path: string;
  attempt: number;
  /** The answer's status: 2xx or the flaky 503. */
  status: number;
  at: number;
}

/** The skewed agent: its clock runs this far ahead, so the times it writes are shifted by it. */
const SKEWED_MACHINE = "chaos-c";
const SKEW_MS = 2000;
/** How long after the store is back its missed occurrences may still be caught up or recorded. */
const CATCHUP_SETTLE_MS = 10_000;
/** The agents' lease_sec, in ms: a killed or paused agent's attempt counts as running this long. */
const LEASE_MS = 5000;

/** `paths`: every step's path; `tries`: requests one attempt may send to each (1 + retries). */
const JOBS = [
  { name: "fast", every: "1s", everyMs: 1000, paths: ["/fast"], tries: 1, url: "{{SINK}}/fast?a={{attempt}}" },
  { name: "slow", every: "2s", everyMs: 2000, paths: ["/slow"], tries: 1, url: "{{SINK}}/slow?a={{attempt}}", timeout_sec: 5 },
  { name: "flaky", every: "2s", everyMs: 2000, paths: ["/flaky"], tries: 4, url: "{{SINK}}/flaky?a={{attempt}}", retry: { retries: 3, delay_sec: 0.1 } },
  {
    name: "chain",
    every: "3s",
    everyMs: 3000,
    paths: ["/chain1", "/chain2"],
    tries: 1,
    actions: [
      { type: "http", name: "first", url: "{{SINK}}/chain1?a={{attempt}}" },
      { type: "http", name: "second", method: "POST", url: "{{SINK}}/chain2?a={{attempt}}&n={{steps.first.json.n}}" },
    ],
  },
] as const;

/** Small deterministic PRNG so a failing run can be replayed with its seed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  const sink = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (line: string) => sink(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}`);
  const seed = options.seed ?? Date.now() % 1_000_000;
  const random = prng(seed);
  const between = ([lo, hi]: [number, number]) => lo + random() * (hi - lo);
  log(`chaos: seed ${seed}`);

  const mongo = await startMongo();
  const arrivals: Arrival[] = [];
  let flaky = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const arrival: Arrival = { runId: req.headers.get("x-fleetcron-run-id") ?? "", key: req.headers.get("idempotency-key"), path: url.pathname, attempt: Number(url.searchParams.get("a")), status: 200, at: Date.now() };
      arrivals.push(arrival);
      if (url.pathname === "/slow") await Bun.sleep(1500);
      if (url.pathname === "/flaky" && flaky++ % 2 === 0) {
        arrival.status = 503;
        return new Response("try again", { status: 503 });
      }
      return Response.json({ n: arrivals.length });
    },
  });

  // Preloaded directly (not through the `faketime` wrapper, which forks: a SIGKILL would reach
  // the wrapper and orphan the agent).
  const faketime = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"].find((p) => existsSync(p)) ?? null;
  const dbName = mongo.dbName("chaos");
  const homes: TestHome[] = [];
  const agents: AgentProcess[] = [];
  const faults: Record<string, number> = { "kill+restart": 0, "pause>lease": 0, "store outage": 0 };
  const faultWindows: FaultWindow[] = [];
  try {
    for (const id of ["chaos-a", "chaos-b", "chaos-c"]) {
      homes.push(
        makeHome(
          {
            mongodb_uri: mongo.uri,
            db_name: dbName,
            machine_id: id,
            tz: "UTC",
            heartbeat_sec: 0.5,
            // Tolerates the skewed agent's 2 s: dead_after and lease well above the skew.
            dead_after_sec: 4,
            failover_step_sec: 1,
            lease_sec: 5,
            catchup_window_sec: 600,
            shutdown_timeout_sec: 5,
            secrets: { SINK: `http://127.0.0.1:${server.port}` },
          },
          `fleetcron-${id}`,
        ),
      );
    }
    const launch = async (i: number) => {
      const home = homes[i]!;
      // The third agent runs with its clock 2 s ahead, through libfaketime.
      const skew: Record<string, string> = i === 2 && faketime ? { LD_PRELOAD: faketime, FAKETIME: "+2s", FAKETIME_DONT_RESET: "1" } : {};
      const agent = startAgent(home, `agent-${i}`, skew);
      agents[i] = agent;
      await agent.waitForLog("running: serial", 60_000);
    };
    for (let i = 0; i < 3; i++) await launch(i);
    const jobsFile = join(homes[0]!.dir, "jobs.json");
    writeFileSync(jobsFile, JSON.stringify(JOBS.map(({ everyMs: _ms, paths: _paths, tries: _tries, ...job }) => job)));
    const applied = await runCli(homes[0]!, ["jobs", "apply", jobsFile]);
    if (applied.exitCode !== 0) throw new Error(`jobs apply failed: ${applied.stderr}`);

    const from = Date.now() + 3000;
    const faultsUntil = from + options.durationMs;
    await Bun.sleep(3000);
    // Fault kinds take turns (so even a short run sees each); the agent and durations are random.
    for (let turn = 0; Date.now() < faultsUntil; turn++) {
      await Bun.sleep(between(options.faultGapMs));
      if (Date.now() >= faultsUntil) break;
      const kind = turn % 3;
      const i = Math.floor(random() * 3);
      const faultFrom = Date.now();
      if (kind === 0) {
        log(`chaos: SIGKILL agent-${i}`);
        await agents[i]!.stop("SIGKILL");
        await Bun.sleep(between([500, 3000]));
        await launch(i);
        log(`chaos: agent-${i} back`);
        faults["kill+restart"]!++;
        faultWindows.push({ kind: "kill+restart", from: faultFrom, to: Date.now() });
      } else if (kind === 1) {
        log(`chaos: SIGSTOP agent-${i} for 7 s (lease 5 s)`);
        agents[i]!.proc.kill("SIGSTOP");
        await Bun.sleep(7000);
        agents[i]!.proc.kill("SIGCONT");
        faults["pause>lease"]!++;
        faultWindows.push({ kind: "pause>lease", from: faultFrom, to: Date.now() });
      } else {
        const downMs = between(options.storeOutageMs);
        log(`chaos: store down for ${(downMs / 1000).toFixed(1)} s`);
        await mongo.shutdown!();
        await Bun.sleep(downMs);
        await mongo.restart!();
        log("chaos: store back");
        faults["store outage"]!++;
        faultWindows.push({ kind: "store outage", from: faultFrom, to: Date.now() });
      }
    }
    // Let the last occurrences, takeovers and catch-ups settle, then stop gracefully.
    log("chaos: faults over; settling");
    await Bun.sleep(12_000);
    const to = faultsUntil;
    for (const agent of agents) {
      if (agent.proc.exitCode !== null) throw new Error(`an agent exited during the run (${agent.proc.exitCode}):\n${agent.log().slice(-2000)}`);
    }
    // Each agent's clock as the fleet sees it (every agent has heartbeated since the last fault).
    const machines = await runCli(homes[0]!, ["machines", "--json"]);
    const clocks: ChaosReport["clocks"] = {};
    if (machines.exitCode === 0) {
      for (const m of JSON.parse(machines.stdout).machines as { machine_id: string; clock_offset_ms: number | null; clock_warning?: string | null }[]) {
        clocks[m.machine_id] = { clock_offset_ms: m.clock_offset_ms, clock_warning: m.clock_warning ?? null };
      }
    } else log(`chaos: fleetcron machines failed (${machines.exitCode}): ${machines.stderr}`);
    log("chaos: stopping the agents");
    const stuck: string[] = [];
    await Promise.all(
      agents.map(async (agent, i) => {
        agent.proc.kill("SIGTERM");
        const exited = await Promise.race([agent.proc.exited.then(() => true), Bun.sleep(30_000).then(() => false)]);
        if (!exited) stuck.push(`agent-${i} did not stop within 30 s of SIGTERM:\n${agent.log().slice(-3000)}`);
      }),
    );
    log("chaos: reconciling");

    const store = await openMongoStore({ uri: mongo.uri, dbName });
    let runs: RunRecord[];
    try {
      runs = await store.listRuns({ limit: 100_000 });
    } finally {
      await store.close();
    }
    const takeovers = runs.filter((r) => r.trigger === "takeover").length;
    const skewOf = (machine: string | undefined) => (machine === SKEWED_MACHINE && faketime ? SKEW_MS : 0);
    return { ...reconcile(arrivals, runs, from, to, faultWindows, skewOf), faults, faultWindows, takeovers, clockSkewedAgent: faketime !== null, clocks, stuckStops: stuck };
  } finally {
    await Promise.all(agents.map((a) => a?.stop("SIGKILL")));
    // CHAOS_LOGS=DIR keeps each agent's log there (their homes are removed below).
    if (process.env.CHAOS_LOGS) {
      mkdirSync(process.env.CHAOS_LOGS, { recursive: true });
      agents.forEach((a, i) => a && writeFileSync(join(process.env.CHAOS_LOGS!, `agent-${i}.log`), a.log()));
    }
    await server.stop(true);
    await mongo.stop();
    for (const home of homes) home.cleanup();
  }
}

function reconcile(arrivals: Arrival[], runs: RunRecord[], from: number, to: number, windows: FaultWindow[], skewOf: (machine: string | undefined) => number) {
  const report = { occurrences: 0, deliveredOnce: 0, rerunAfterLostLease: 0, accounted: {} as Record<string, number>, duplicates: [] as string[], unaccounted: [] as string[] };
  const recordsByRun = new Map<string, RunRecord[]>();
  for (const run of runs) recordsByRun.set(run.run_id, [...(recordsByRun.get(run.run_id) ?? []), run]);
  const arrivalsByRun = new Map<string, Arrival[]>();
  for (const a of arrivals) arrivalsByRun.set(a.runId, [...(arrivalsByRun.get(a.runId) ?? []), a]);
  // Every request names its run in both headers.
  for (const a of arrivals) if (a.key !== a.runId || !a.runId) report.duplicates.push(`${a.path}: Idempotency-Key ${a.key} but X-FleetCron-Run-Id ${a.runId}`);
  // A store outage, and the catch-up just after it, may leave occurrences undelivered (with a reason).
  const excused = (at: number) => windows.some((w) => w.kind === "store outage" && at >= w.from - 1000 && at <= w.to + CATCHUP_SETTLE_MS);
  // An attempt of a killed or paused agent holds its lease until it expires, then its successor
  // runs (1.5 s for `slow`): an overlap: skip job is rightly skipped meanwhile, and only then.
  // An overlap skip is accounted for when the records show the previous run still going at the
  // instant (by the recording agent's clock, hence the skew allowance), or near a kill or pause
  // (whose interrupted run leaves no finish time).
  const overlapProven = (at: number, record: RunRecord) =>
    runs.some(
      (r) =>
        r.job_id === record.job_id &&
        r.scheduled_for.getTime() < at &&
        r.started_at !== undefined &&
        r.finished_at !== undefined &&
        r.started_at.getTime() <= at + SKEW_MS &&
        r.finished_at.getTime() >= at - SKEW_MS - 500,
    );
  const overlapExcused = (at: number, record: RunRecord | undefined) =>
    record?.status === "skipped" &&
    (record.reason ?? "").startsWith("overlap:") &&
    (overlapProven(at, record) || windows.some((w) => w.kind !== "store outage" && at >= w.from - 2000 && at <= Math.max(w.to, w.from + LEASE_MS) + 4000));
  const jobIds = new Map(runs.map((r) => [r.job_name, r.job_id]));

  // No lost attempt is left without a successor, in the whole history (not only the reconciled span).
  for (const [runId, records] of recordsByRun) {
    for (const lost of records.filter((r) => r.status === "lost")) {
      if (!records.some((r) => r.attempt === lost.attempt + 1)) report.unaccounted.push(`${lost.job_name} ${runId}: attempt ${lost.attempt} lost, no attempt ${lost.attempt + 1}`);
    }
  }

  for (const job of JOBS) {
    const jobId = jobIds.get(job.name);
    if (!jobId) {
      report.unaccounted.push(`${job.name}: no run at all`);
      continue;
    }
    for (let at = Math.ceil(from / job.everyMs) * job.everyMs; at <= to; at += job.everyMs) {
      report.occurrences++;
      const runId = `${jobId}@${new Date(at).toISOString()}`;
      const records = (recordsByRun.get(runId) ?? []).sort((a, b) => a.attempt - b.attempt);
      const byAttempt = new Map(records.map((r) => [r.attempt, r]));
      const got = arrivalsByRun.get(runId) ?? [];
      const show = () =>
        `${job.name} ${runId}: ${got.map((a) => `${a.path}#${a.attempt}→${a.status}`).join(" ") || "no request"}; records ${records.map((r) => `${r.attempt}:${r.status}${r.machine_id ? `@${r.machine_id}` : ""}${r.reason ? ` (${r.reason})` : ""}`).join(" ") || "none"}`;

      // Repeats, on every step's path and whatever the answer was.
      let repeated = false;
      for (const path of job.paths) {
        const onPath = got.filter((a) => a.path === path);
        const attempts = [...new Set(onPath.map((a) => a.attempt))].sort((a, b) => a - b);
        for (const n of attempts) {
          const sent = onPath.filter((a) => a.attempt === n);
          // Only the job's own retries, and none after a success.
          const firstOk = sent.findIndex((a) => a.status >= 200 && a.status < 300);
          if (sent.length > job.tries || (firstOk !== -1 && firstOk < sent.length - 1)) report.duplicates.push(`${path} attempt ${n} sent ${sent.length} time(s): ${show()}`);
          // A later attempt exists only because this one was recorded lost, after which it sends nothing.
          if (n !== attempts[attempts.length - 1]) {
            const record = byAttempt.get(n);
            const successor = byAttempt.get(n + 1);
            if (record?.status !== "lost" || attempts[attempts.indexOf(n) + 1] !== n + 1) report.duplicates.push(`${path}: attempts ${attempts.join(",")} without attempt ${n} being lost: ${show()}`);
            else if (record.finished_at) {
              const lostAt = record.finished_at.getTime() - skewOf(successor?.machine_id);
              const late = sent.filter((a) => a.at > lostAt + 250);
              if (late.length > 0) report.duplicates.push(`${path}: attempt ${n} still sent ${late.length} request(s) after it was marked lost (fencing): ${show()}`);
            }
            repeated = true;
          }
        }
      }

      // Delivered: the last attempt succeeded, and the sink saw its first step.
      const last = records[records.length - 1];
      if (last?.status === "success" && got.some((a) => a.path === job.paths[0] && a.attempt === last.attempt)) {
        if (repeated || last.attempt > 1) report.rerunAfterLostLease++;
        else report.deliveredOnce++;
      } else if (excused(at) && last && (last.status === "missed" || last.status === "skipped" || last.status === "error") && (last.reason || last.error)) {
        report.accounted[last.status] = (report.accounted[last.status] ?? 0) + 1;
      } else if (overlapExcused(at, last)) {
        report.accounted["skipped: overlap after a kill or pause"] = (report.accounted["skipped: overlap after a kill or pause"] ?? 0) + 1;
      } else {
        report.unaccounted.push(`${excused(at) ? "" : "outside any store outage: "}${show()}`);
      }
    }
  }
  return report;
}

/** `bun run chaos [--minutes N] [--seed S]`: the full run, figures on stdout. */
if (import.meta.main) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i === -1 ? undefined : process.argv[i + 1];
  };
  const minutes = Number(arg("--minutes") ?? 8);
  const report = await runChaos({ durationMs: minutes * 60_000, faultGapMs: [4000, 12000], storeOutageMs: [15_000, 30_000], seed: arg("--seed") ? Number(arg("--seed")) : undefined });
  console.log(JSON.stringify(report, null, 2));
  // Where libfaketime ran the skewed agent, the fleet must have seen its clock about 2 s ahead.
  const skew = report.clocks[SKEWED_MACHINE]?.clock_offset_ms ?? null;
  const skewSeen = !report.clockSkewedAgent || (skew !== null && Math.abs(skew - SKEW_MS) < 500);
  process.exit(report.duplicates.length === 0 && report.unaccounted.length === 0 && report.stuckStops.length === 0 && skewSeen ? 0 : 1);
}
