import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Context } from "../lib/context.ts";
import { startFerret } from "../lib/ferret.ts";
import { Fleet, insertJobs, launch, type StoreSpec } from "../lib/fleetcron.ts";
import { cpuSeconds, log, round, rssMb, sleep } from "../lib/util.ts";

/**
 * Idle cost: one agent with 1,000 jobs due hourly (none due during the window), measured over
 * `idleSec`: CPU % of one core from /proc/<pid>/stat (utime + stime), RSS from /proc/<pid>/status,
 * and store operations per minute. On FerretDB the operations are the server's own request counters
 * (a FerretDB of its own, so nothing else is counted); on SQLite, statements counted by a preload
 * that wraps bun:sqlite (bench/lib/count-sqlite.ts), which needs the agent run from source.
 */
export interface IdleResult {
  store: "sqlite" | "ferretdb";
  jobs: number;
  window_s: number;
  cpu_pct: number | null;
  /** RSS when the window opened, at its end, and the highest sample. */
  rss_start_mb: number | null;
  rss_mb: number | null;
  rss_max_mb: number | null;
  store_ops_per_min: number | null;
  store_ops_by_kind?: Record<string, number>;
  store_ops_how: string;
  ferretdb_cpu_pct?: number | null;
}

const JOBS = 1000;

export async function idle(ctx: Context): Promise<IdleResult[]> {
  // Every job at the same minute, half an hour away: none is due while we watch.
  const minute = (new Date().getUTCMinutes() + 30) % 60;
  const jobs = (sys: string) =>
    Array.from({ length: JOBS }, (_, i) => ({ name: `hourly-${i}`, enabled: true, hour: null, minute, tz: "UTC", method: "GET", url: `${ctx.sink.url}/idle?sys=${sys}&i=${i}` }));

  const ferret = await startFerret("idle");
  const counterFile = join(ctx.tmp, "sqlite-ops.json");
  const sqliteStore: StoreSpec = { kind: "sqlite", path: join(ctx.tmp, "idle.db") };
  const mongoStore: StoreSpec = { kind: "mongo", uri: ferret.uri, db: "idle" };
  await insertJobs(sqliteStore, jobs("idle-sqlite"));
  await insertJobs(mongoStore, jobs("idle-ferretdb"));
  const sqliteFleet = new Fleet("idle-sqlite", sqliteStore, 1, {}, { BENCH_SQLITE_COUNT_FILE: counterFile });
  const mongoFleet = new Fleet("idle-ferretdb", mongoStore, 1);
  const preload = launch.bin ? [] : ["--preload", resolve(import.meta.dir, "../lib/count-sqlite.ts")];
  try {
    await Promise.all([sqliteFleet.agents[0]!.up(60_000, preload), mongoFleet.agents[0]!.up(60_000)]);
    // Start-up (loading and validating 1,000 jobs, first heartbeat) is not idle: let it settle.
    await sleep(6000);
    const agents = [sqliteFleet.agents[0]!, mongoFleet.agents[0]!];
    const readOps = () => {
      try {
        return JSON.parse(readFileSync(counterFile, "utf8")) as { total: number; byVerb: Record<string, number> };
      } catch {
        return null;
      }
    };
    const t0 = Date.now();
    const cpu0 = agents.map((a) => cpuSeconds(a.pid));
    const ferretCpu0 = cpuSeconds(ferret.pid);
    const sqliteOps0 = readOps();
    const ferretOps0 = await ferret.requests();
    const rssMax = [0, 0];
    const rssStart = agents.map((a) => rssMb(a.pid));
    log(`idle: watching 2 agents with ${JOBS} hourly jobs each for ${ctx.plan.idleSec} s`);
    while (Date.now() - t0 < ctx.plan.idleSec * 1000) {
      await sleep(1000);
      agents.forEach((a, i) => (rssMax[i] = Math.max(rssMax[i]!, rssMb(a.pid) ?? 0)));
    }
    await sleep(1100); // the counter file is written once a second
    const seconds = (Date.now() - t0) / 1000;
    const cpu1 = agents.map((a) => cpuSeconds(a.pid));
    const ferretCpu1 = cpuSeconds(ferret.pid);
    const sqliteOps1 = readOps();
    const ferretOps1 = await ferret.requests();
    const perMin = (n: number) => round((n / seconds) * 60, 0);
    const cpuPct = (i: number) => (cpu0[i] !== null && cpu1[i] !== null ? round(((cpu1[i]! - cpu0[i]!) / seconds) * 100, 2) : null);

    const ferretDelta: Record<string, number> = {};
    let ferretTotal = 0;
    for (const [command, n] of ferretOps1) {
      const d = n - (ferretOps0.get(command) ?? 0);
      if (d > 0) (ferretDelta[command] = perMin(d)!), (ferretTotal += d);
    }
    const sqliteDelta: Record<string, number> = {};
    if (sqliteOps0 && sqliteOps1) for (const [verb, n] of Object.entries(sqliteOps1.byVerb)) {
      const d = n - (sqliteOps0.byVerb[verb] ?? 0);
      if (d > 0) sqliteDelta[verb] = perMin(d)!;
    }
    return [
      {
        store: "sqlite",
        jobs: JOBS,
        window_s: round(seconds, 0)!,
        cpu_pct: cpuPct(0),
        rss_start_mb: round(rssStart[0] ?? null, 1),
        rss_mb: round(rssMb(agents[0]!.pid), 1),
        rss_max_mb: round(rssMax[0]!, 1),
        store_ops_per_min: sqliteOps0 && sqliteOps1 ? perMin(sqliteOps1.total - sqliteOps0.total) : null,
        store_ops_by_kind: sqliteDelta,
        store_ops_how: sqliteOps0 ? "SQLite statements executed, counted by a bun:sqlite wrapper preloaded into the agent" : "not counted (agent is a compiled binary)",
      },
      {
        store: "ferretdb",
        jobs: JOBS,
        window_s: round(seconds, 0)!,
        cpu_pct: cpuPct(1),
        rss_start_mb: round(rssStart[1] ?? null, 1),
        rss_mb: round(rssMb(agents[1]!.pid), 1),
        rss_max_mb: round(rssMax[1]!, 1),
        store_ops_per_min: perMin(ferretTotal),
        store_ops_by_kind: ferretDelta,
        store_ops_how: "FerretDB's own request counters (ferretdb_client_requests_total), a FerretDB serving only this agent",
        ferretdb_cpu_pct: ferretCpu0 !== null && ferretCpu1 !== null ? round(((ferretCpu1 - ferretCpu0) / seconds) * 100, 2) : null,
      },
    ];
  } finally {
    await sqliteFleet.down("SIGTERM");
    await mongoFleet.down("SIGTERM");
    sqliteFleet.cleanup();
    mongoFleet.cleanup();
    await ferret.stop();
  }
}
