import { existsSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openMongoStore } from "../../src/store/mongo.ts";
import type { RunRecord } from "../../src/store/types.ts";
import { makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startMongo } from "../support/ferretdb.ts";

/**
 * The chaos run (issue 6): three agents on FerretDB with a mix of jobs, while a driver kills and
 * restarts agents, pauses one longer than its lease, stops the store, and runs one agent with its
 * clock 2 s ahead (libfaketime, not a hook in product code). Then the sink is reconciled against
 * job_runs: every occurrence delivered once, or accounted for with a reason; a repeat only as the
 * re-run after a lost lease, with the same Idempotency-Key.
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
  deliveredOnce: number;
  rerunAfterLostLease: number;
  /** Not delivered, with a reason recorded: missed, skipped, lost, or failed (error status). */
  accounted: Record<string, number>;
  duplicates: string[];
  unaccounted: string[];
  faults: Record<string, number>;
  takeovers: number;
  clockSkewedAgent: boolean;
  /** Agents that did not exit within 30 s of SIGTERM, with the end of their logs. */
  stuckStops: string[];
}

interface Arrival {
  runId: string;
  key: string | null;
  path: string;
  attempt: string | null;
  ok: boolean;
}

const JOBS = [
  { name: "fast", every: "1s", everyMs: 1000, url: "{{SINK}}/fast?a={{attempt}}" },
  { name: "slow", every: "2s", everyMs: 2000, url: "{{SINK}}/slow?a={{attempt}}", timeout_sec: 5 },
  { name: "flaky", every: "2s", everyMs: 2000, url: "{{SINK}}/flaky?a={{attempt}}", retry: { retries: 3, delay_sec: 0.1 } },
  {
    name: "chain",
    every: "3s",
    everyMs: 3000,
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
      const arrival: Arrival = { runId: req.headers.get("x-fleetcron-run-id") ?? "", key: req.headers.get("idempotency-key"), path: url.pathname, attempt: url.searchParams.get("a"), ok: true };
      arrivals.push(arrival);
      if (url.pathname === "/slow") await Bun.sleep(1500);
      if (url.pathname === "/flaky" && flaky++ % 2 === 0) {
        arrival.ok = false;
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
    writeFileSync(jobsFile, JSON.stringify(JOBS.map(({ everyMs: _ms, ...job }) => job)));
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
      if (kind === 0) {
        log(`chaos: SIGKILL agent-${i}`);
        await agents[i]!.stop("SIGKILL");
        await Bun.sleep(between([500, 3000]));
        await launch(i);
        log(`chaos: agent-${i} back`);
        faults["kill+restart"]!++;
      } else if (kind === 1) {
        log(`chaos: SIGSTOP agent-${i} for 7 s (lease 5 s)`);
        agents[i]!.proc.kill("SIGSTOP");
        await Bun.sleep(7000);
        agents[i]!.proc.kill("SIGCONT");
        faults["pause>lease"]!++;
      } else {
        const downMs = between(options.storeOutageMs);
        log(`chaos: store down for ${(downMs / 1000).toFixed(1)} s`);
        await mongo.shutdown!();
        await Bun.sleep(downMs);
        await mongo.restart!();
        log("chaos: store back");
        faults["store outage"]!++;
      }
    }
    // Let the last occurrences, takeovers and catch-ups settle, then stop gracefully.
    log("chaos: faults over; settling");
    await Bun.sleep(12_000);
    const to = faultsUntil;
    for (const agent of agents) {
      if (agent.proc.exitCode !== null) throw new Error(`an agent exited during the run (${agent.proc.exitCode}):\n${agent.log().slice(-2000)}`);
    }
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
    return { ...reconcile(arrivals, runs, from, to), faults, takeovers, clockSkewedAgent: faketime !== null, stuckStops: stuck };
  } finally {
    await Promise.all(agents.map((a) => a?.stop("SIGKILL")));
    await server.stop(true);
    await mongo.stop();
    for (const home of homes) home.cleanup();
  }
}

function reconcile(arrivals: Arrival[], runs: RunRecord[], from: number, to: number) {
  const firstPath: Record<string, string> = { fast: "/fast", slow: "/slow", flaky: "/flaky", chain: "/chain1" };
  const report = { occurrences: 0, deliveredOnce: 0, rerunAfterLostLease: 0, accounted: {} as Record<string, number>, duplicates: [] as string[], unaccounted: [] as string[] };
  const recordsByRun = new Map<string, RunRecord[]>();
  for (const run of runs) recordsByRun.set(run.run_id, [...(recordsByRun.get(run.run_id) ?? []), run]);
  const jobIds = new Map(runs.map((r) => [r.job_name, r.job_id]));
  for (const job of JOBS) {
    const jobId = jobIds.get(job.name);
    if (!jobId) {
      report.unaccounted.push(`${job.name}: no run at all`);
      continue;
    }
    for (let at = Math.ceil(from / job.everyMs) * job.everyMs; at <= to; at += job.everyMs) {
      report.occurrences++;
      const runId = `${jobId}@${new Date(at).toISOString()}`;
      const delivered = arrivals.filter((a) => a.runId === runId && a.path === firstPath[job.name] && a.ok);
      const records = recordsByRun.get(runId) ?? [];
      const attempts = new Set(delivered.map((d) => d.attempt));
      const lost = records.some((r) => r.status === "lost");
      if (delivered.length === 1) report.deliveredOnce++;
      else if (delivered.length > 1 && lost && attempts.size === delivered.length && new Set(delivered.map((d) => d.key)).size === 1) report.rerunAfterLostLease++;
      else if (delivered.length > 1) report.duplicates.push(`${job.name} ${runId}: ${delivered.length} deliveries, attempts ${[...attempts].join(",")}, records ${records.map((r) => `${r.attempt}:${r.status}`).join(" ")}`);
      else {
        const final = records.sort((a, b) => b.attempt - a.attempt)[0];
        if (final && final.status !== "running" && final.status !== "success" && (final.reason || final.error)) {
          report.accounted[final.status] = (report.accounted[final.status] ?? 0) + 1;
        } else {
          report.unaccounted.push(`${job.name} ${runId}: ${records.map((r) => `${r.attempt}:${r.status}`).join(" ") || "no record"}`);
        }
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
  process.exit(report.duplicates.length === 0 && report.unaccounted.length === 0 && report.stuckStops.length === 0 ? 0 : 1);
}
