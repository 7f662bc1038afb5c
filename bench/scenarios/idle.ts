import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Context } from "../lib/context.ts";
import { startFerret, storeCpu, storeCpuDelta, type Ferret } from "../lib/ferret.ts";
import { Fleet, insertJobs, launch, type StoreSpec } from "../lib/fleetcron.ts";
import { STORE_LABEL, type StoreKind } from "../lib/stores.ts";
import { cpuSeconds, log, round, rssMb, rssSplitMb, sleep } from "../lib/util.ts";
import { bullmqPrefix, dropBullmqPrefix, REDIS_URL, setupBullmq } from "../lib/bullmq.ts";
import { BULLMQ_DEFAULT_LABEL, BULLMQ_TIGHT_LABEL } from "../lib/bullmq-settings.ts";
import { startBullmq, startPgboss, type PeerProcess } from "../lib/peers.ts";
import { dropPgbossSchema, pgbossBackendPids, pgbossSchema, pgbossUrl, setupPgboss } from "../lib/pgboss.ts";
import { PGBOSS_DEFAULT_LABEL, PGBOSS_TIGHT_LABEL } from "../lib/pgboss-settings.ts";

interface PeerRow {
  system: string;
  settings: string;
  store: "PostgreSQL" | "Redis";
  proc: PeerProcess;
  cleanup: () => void;
  /** PostgreSQL backends serving it (pg-boss); Redis serves both BullMQ rows, so it has none of its own. */
  storePids: () => number[];
  cpu0?: number | null;
  storeCpu0?: number;
  rssStart?: number | null;
  rssMax: number;
}

/** pg-boss and BullMQ workers with 1,000 hourly schedules each, tight and default settings, side by side with the agents. */
async function startIdlePeers(ctx: Context, minute: number): Promise<PeerRow[]> {
  const starts: Promise<PeerRow>[] = [];
  for (const tight of [true, false]) {
    if (!ctx.peerNotes.pgboss) {
      const sys = `idle-pgboss-${tight ? "tight" : "default"}`;
      const schema = pgbossSchema(sys.replace(/-/g, "_"));
      starts.push(
        setupPgboss(schema, "hourly", tight, Array.from({ length: JOBS }, (_, i) => ({ cron: `${minute} * * * *`, key: `h${i}`, data: { i } }))).then(() => {
          const proc = startPgboss({ url: pgbossUrl(), schema, name: sys, sink: ctx.sink.url, sys, queue: "hourly", tight, max: 3 });
          return { system: `pg-boss (${tight ? "tight" : "default"})`, settings: tight ? PGBOSS_TIGHT_LABEL : PGBOSS_DEFAULT_LABEL, store: "PostgreSQL" as const, proc, cleanup: () => dropPgbossSchema(schema), storePids: () => pgbossBackendPids(sys), rssMax: 0 };
        }),
      );
    }
    if (!ctx.peerNotes.bullmq) {
      const sys = `idle-bullmq-${tight ? "tight" : "default"}`;
      const prefix = bullmqPrefix(sys);
      starts.push(
        setupBullmq(prefix, "hourly", Array.from({ length: JOBS }, (_, i) => ({ id: `h${i}`, pattern: `0 ${minute} * * * *`, data: { i } }))).then(() => {
          const proc = startBullmq({ redis: REDIS_URL, prefix, name: sys, sink: ctx.sink.url, sys, queue: "hourly", tight });
          return { system: `BullMQ (${tight ? "tight" : "default"})`, settings: tight ? BULLMQ_TIGHT_LABEL : BULLMQ_DEFAULT_LABEL, store: "Redis" as const, proc, cleanup: () => dropBullmqPrefix(prefix), storePids: () => [], rssMax: 0 };
        }),
      );
    }
  }
  const rows: PeerRow[] = await Promise.all(starts);
  await Promise.all(rows.map((r) => r.proc.ready(60_000)));
  return rows;
}

/**
 * Idle cost: one agent with 1,000 jobs due hourly (none due during the window), measured over
 * `idleSec`: CPU % of one core from /proc/<pid>/stat (utime + stime), RSS from /proc/<pid>/status,
 * and store operations per minute. On FerretDB (each handler) the operations are the server's own
 * request counters (a FerretDB of its own, so nothing else is counted); on SQLite, statements
 * counted by a preload that wraps bun:sqlite (bench/lib/count-sqlite.ts), which needs the agent run
 * from source.
 */
export interface IdleResult {
  /** FleetCron when absent (results from before the peers' rows). */
  system?: string;
  settings?: string;
  /** `ferretdb`: FerretDB's SQLite handler; `ferretdb-pg`: its PostgreSQL handler; the peers' PostgreSQL and Redis. */
  store: StoreKind | "PostgreSQL" | "Redis";
  jobs: number;
  window_s: number;
  cpu_pct: number | null;
  /** RSS when the window opened, at its end, and the highest sample. */
  rss_start_mb: number | null;
  rss_mb: number | null;
  rss_max_mb: number | null;
  /** RSS at the window's end, private (anon) and file-backed (the runtime's executable, shared): bench/lib/util.ts rssSplitMb. */
  rss_anon_mb?: number | null;
  rss_file_mb?: number | null;
  store_ops_per_min: number | null;
  store_ops_by_kind?: Record<string, number>;
  store_ops_how: string;
  ferretdb_cpu_pct?: number | null;
}

const JOBS = 1000;

function splitAt(pid: number): Pick<IdleResult, "rss_anon_mb" | "rss_file_mb"> {
  const split = rssSplitMb(pid);
  return { rss_anon_mb: round(split?.anon ?? null, 1), rss_file_mb: round(split?.file ?? null, 1) };
}

interface Row {
  kind: StoreKind;
  fleet: Fleet;
  ferret?: Ferret;
  flags: string[];
  ops0?: Map<string, number> | { total: number; byVerb: Record<string, number> } | null;
  cpu0?: number | null;
  ferretCpu0?: Map<number, number> | null;
  rssStart?: number | null;
  rssMax: number;
}

export async function idle(ctx: Context): Promise<IdleResult[]> {
  // Every job at the same minute, half an hour away: none is due while we watch.
  const minute = (new Date().getUTCMinutes() + 30) % 60;
  const jobs = (sys: string) =>
    Array.from({ length: JOBS }, (_, i) => ({ name: `hourly-${i}`, enabled: true, hour: null, minute, tz: "UTC", method: "GET", url: `${ctx.sink.url}/idle?sys=${sys}&i=${i}` }));

  const counterFile = join(ctx.tmp, "sqlite-ops.json");
  const readOps = () => {
    try {
      return JSON.parse(readFileSync(counterFile, "utf8")) as { total: number; byVerb: Record<string, number> };
    } catch {
      return null;
    }
  };
  const rows: Row[] = [];
  const ferrets: Ferret[] = [];
  let peers: PeerRow[] = [];
  try {
    // Started while the agents start (they are measured only after everything has settled).
    const peersStarted = startIdlePeers(ctx, minute).then((p) => (peers = p));
    const sqliteStore: StoreSpec = { kind: "sqlite", path: join(ctx.tmp, "idle.db") };
    await insertJobs(sqliteStore, jobs("idle-sqlite"));
    const preload = launch.bin ? [] : ["--preload", resolve(import.meta.dir, "../lib/count-sqlite.ts")];
    rows.push({ kind: "sqlite", fleet: new Fleet("idle-sqlite", sqliteStore, 1, {}, { BENCH_SQLITE_COUNT_FILE: counterFile }), flags: preload, rssMax: 0 });
    // Each FerretDB row gets a FerretDB of its own, so its counters count this agent only.
    for (const kind of (ctx.ferretPg ? ["ferretdb", "ferretdb-pg"] : ["ferretdb"]) as StoreKind[]) {
      const ferret = await startFerret(kind === "ferretdb" ? "idle" : "idle_pg", undefined, kind === "ferretdb" ? "sqlite" : "pg");
      ferrets.push(ferret);
      const store: StoreSpec = { kind: "mongo", uri: ferret.uri, db: "idle" };
      await insertJobs(store, jobs(`idle-${kind}`));
      rows.push({ kind, fleet: new Fleet(`idle-${kind}`, store, 1), ferret, flags: [], rssMax: 0 });
    }
    await Promise.all([...rows.map((r) => r.fleet.agents[0]!.up(60_000, r.flags)), peersStarted]);
    // Start-up (loading and validating 1,000 jobs, first heartbeat) is not idle: let it settle.
    await sleep(6000);
    const t0 = Date.now();
    for (const r of rows) {
      const pid = r.fleet.agents[0]!.pid;
      r.cpu0 = cpuSeconds(pid);
      r.rssStart = rssMb(pid);
      r.ferretCpu0 = r.ferret ? storeCpu(r.ferret.storePids()) : null;
      r.ops0 = r.ferret ? await r.ferret.requests() : readOps();
    }
    for (const p of peers) {
      p.cpu0 = cpuSeconds(p.proc.proc.pid);
      p.rssStart = rssMb(p.proc.proc.pid);
      p.storeCpu0 = p.storePids().reduce((s, pid) => s + (cpuSeconds(pid) ?? 0), 0);
    }
    log(`idle: watching ${rows.length} agents with ${JOBS} hourly jobs each for ${ctx.plan.idleSec} s (${rows.map((r) => STORE_LABEL[r.kind]).join(", ")})`);
    while (Date.now() - t0 < ctx.plan.idleSec * 1000) {
      await sleep(1000);
      for (const r of rows) r.rssMax = Math.max(r.rssMax, rssMb(r.fleet.agents[0]!.pid) ?? 0);
      for (const p of peers) p.rssMax = Math.max(p.rssMax, rssMb(p.proc.proc.pid) ?? 0);
    }
    await sleep(300); // the SQLite counter file is written four times a second
    const seconds = (Date.now() - t0) / 1000;
    const perMin = (n: number) => round((n / seconds) * 60, 0);
    const out: IdleResult[] = [];
    for (const r of rows) {
      const pid = r.fleet.agents[0]!.pid;
      const cpu1 = cpuSeconds(pid);
      const common = {
        store: r.kind,
        jobs: JOBS,
        window_s: round(seconds, 0)!,
        cpu_pct: r.cpu0 != null && cpu1 !== null ? round(((cpu1 - r.cpu0) / seconds) * 100, 2) : null,
        rss_start_mb: round(r.rssStart ?? null, 1),
        rss_mb: round(rssMb(pid), 1),
        rss_max_mb: round(r.rssMax, 1),
        ...splitAt(pid),
      };
      if (r.ferret) {
        const ops0 = r.ops0 as Map<string, number>;
        const ops1 = await r.ferret.requests();
        const byKind: Record<string, number> = {};
        let total = 0;
        for (const [command, n] of ops1) {
          const d = n - (ops0.get(command) ?? 0);
          if (d > 0) (byKind[command] = perMin(d)!), (total += d);
        }
        const fcpu = r.ferretCpu0 ? storeCpuDelta(r.ferretCpu0, storeCpu(r.ferret.storePids())) : null;
        out.push({
          ...common,
          store_ops_per_min: perMin(total),
          store_ops_by_kind: byKind,
          store_ops_how: `FerretDB's own request counters (ferretdb_client_requests_total), a FerretDB (${r.ferret.handler} handler) serving only this agent`,
          ferretdb_cpu_pct: fcpu !== null ? round((fcpu / seconds) * 100, 2) : null,
        });
      } else {
        const ops0 = r.ops0 as { total: number; byVerb: Record<string, number> } | null;
        const ops1 = readOps();
        const byKind: Record<string, number> = {};
        if (ops0 && ops1) for (const [verb, n] of Object.entries(ops1.byVerb)) {
          const d = n - (ops0.byVerb[verb] ?? 0);
          if (d > 0) byKind[verb] = perMin(d)!;
        }
        out.push({
          ...common,
          store_ops_per_min: ops0 && ops1 ? perMin(ops1.total - ops0.total) : null,
          store_ops_by_kind: byKind,
          store_ops_how: ops0 ? "SQLite statements executed, counted by a bun:sqlite wrapper preloaded into the agent" : "not counted (agent is a compiled binary)",
        });
      }
    }
    for (const p of peers) {
      const pid = p.proc.proc.pid;
      const cpu1 = cpuSeconds(pid);
      const storePids = p.storePids();
      out.push({
        system: p.system,
        settings: p.settings,
        store: p.store,
        jobs: JOBS,
        window_s: round(seconds, 0)!,
        cpu_pct: p.cpu0 != null && cpu1 !== null ? round(((cpu1 - p.cpu0) / seconds) * 100, 2) : null,
        rss_start_mb: round(p.rssStart ?? null, 1),
        rss_mb: round(rssMb(pid), 1),
        rss_max_mb: round(p.rssMax, 1),
        ...splitAt(pid),
        store_ops_per_min: null,
        store_ops_how: "not counted",
        ...(storePids.length ? { ferretdb_cpu_pct: round(((storePids.reduce((s, x) => s + (cpuSeconds(x) ?? 0), 0) - (p.storeCpu0 ?? 0)) / seconds) * 100, 2) } : {}),
      });
    }
    return out;
  } finally {
    await Promise.all(peers.map((p) => p.proc.kill()));
    for (const p of peers) p.cleanup();
    for (const r of rows) await r.fleet.down("SIGTERM");
    for (const r of rows) r.fleet.cleanup();
    for (const f of ferrets) await f.stop();
  }
}
