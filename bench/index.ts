/**
 * FleetCron benchmarks (issues 5, 10): `bun run bench` (full) or `bun run bench --quick` (< 4 min).
 *
 * Everything runs on 127.0.0.1: a local HTTP sink timestamps arrivals, FerretDB v1.24.2 is started
 * for the run twice (its SQLite handler, and its PostgreSQL handler on a throwaway database of the
 * local PostgreSQL), FleetCron agents are real processes (each with its own FLEETCRON_HOME), and the
 * peers (Agenda on the same FerretDB, croner as the timer floor) run in the same run, side by side
 * where the measure allows; so do pg-boss 12 (on the local PostgreSQL, a schema per case) and BullMQ 6
 * (on the local Redis, a key prefix per case), each as worker processes of their own (issue 16).
 * pg-boss's cron has minute precision: its lateness and failover rows are every-minute ones measured
 * in the background from before idle to the end of failover (bench/scenarios/pgboss-minute.ts).
 * Prints tables and writes bench/results/<timestamp>.json.
 *
 * Flags: --quick · --only binary,idle,lateness,fleet,failover,burst · --bin PATH (a compiled
 * fleetcron instead of `bun src/main.ts`) · --burst-sizes 1000,5000 (SQLite and FerretDB) ·
 * --burst-sizes-ferretdb N,… · --burst-cap-sec N · --lateness-sec N · --idle-sec N · --kills N ·
 * --fleet-sec N · --fleet-jobs 1,50 · --no-pg (no FerretDB-pg rows) · --no-pgboss · --no-bullmq ·
 * --profile (CPU-profile the agent of the largest FerretDB burst; bun --cpu-prof).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { FULL_PLAN, QUICK_PLAN, type Context, type Plan } from "./lib/context.ts";
import { startFerret, type Ferret } from "./lib/ferret.ts";
import { launch } from "./lib/fleetcron.ts";
import { pgServerVersion, pgUnavailable } from "./lib/postgres.ts";
import { redisServerVersion, redisUnavailable } from "./lib/bullmq.ts";
import { startPgbossMinuteTrack, type MinuteTrack } from "./scenarios/pgboss-minute.ts";
import type { FailoverResult, TakeoverResult } from "./scenarios/failover.ts";
import type { IdleResult } from "./scenarios/idle.ts";
import type { LatenessResult } from "./scenarios/lateness.ts";
import { ensureFerret, ferretKinds } from "./lib/stores.ts";
import { startSink } from "./lib/sink.ts";
import { loadavg, log, machineInfo } from "./lib/util.ts";
import { binary } from "./scenarios/binary.ts";
import { burst } from "./scenarios/burst.ts";
import { failover } from "./scenarios/failover.ts";
import { fleetLoad } from "./scenarios/fleet-load.ts";
import { idle } from "./scenarios/idle.ts";
import { lateness } from "./scenarios/lateness.ts";
import { report } from "./report.ts";

const ALL = ["binary", "idle", "lateness", "fleet", "failover", "burst"] as const;
type Scenario = (typeof ALL)[number];

function parseArgs(argv: string[]) {
  const flag = (name: string) => argv.includes(`--${name}`);
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return argv[i + 1];
    return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  };
  const plan: Plan = { ...(flag("quick") ? QUICK_PLAN : FULL_PLAN) };
  const num = (name: string) => (value(name) !== undefined ? Number(value(name)) : undefined);
  if (value("burst-sizes")) plan.burstSizes = plan.burstSizesFerret = value("burst-sizes")!.split(",").map(Number);
  if (value("burst-sizes-ferretdb")) plan.burstSizesFerret = value("burst-sizes-ferretdb")!.split(",").map(Number);
  if (num("lateness-sec")) plan.latenessSec = num("lateness-sec")!;
  if (num("idle-sec")) plan.idleSec = num("idle-sec")!;
  if (num("kills")) plan.kills = num("kills")!;
  if (num("burst-cap-sec")) plan.burstCapSec = num("burst-cap-sec")!;
  if (num("fleet-sec")) plan.fleetLoadSec = num("fleet-sec")!;
  if (value("fleet-jobs")) plan.fleetLoadJobs = value("fleet-jobs")!.split(",").map(Number);
  if (flag("profile")) plan.profileBurst = true;
  const only = value("only")?.split(",") as Scenario[] | undefined;
  for (const s of only ?? []) if (!ALL.includes(s)) throw new Error(`--only: unknown scenario "${s}" (known: ${ALL.join(", ")})`);
  return { plan, only: only ?? [...ALL], bin: value("bin"), pg: !flag("no-pg"), pgboss: !flag("no-pgboss"), bullmq: !flag("no-bullmq") };
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(resolve(import.meta.dir, "../node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

function gitRevision(): string {
  const run = (args: string[]) => Bun.spawnSync(["git", ...args], { cwd: resolve(import.meta.dir, "..") }).stdout.toString().trim();
  try {
    const rev = run(["rev-parse", "--short", "HEAD"]);
    const dirty = run(["status", "--porcelain", "--untracked-files=no", "--", "src"]) !== "";
    return rev ? `${rev}${dirty ? " + uncommitted changes in src/" : ""}` : "unknown";
  } catch {
    return "unknown";
  }
}

const { plan, only, bin, pg, pgboss, bullmq } = parseArgs(process.argv.slice(2));
if (bin) launch.bin = resolve(bin);

const resultsDir = resolve(import.meta.dir, "results");
mkdirSync(resultsDir, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), "fleetcron-bench-"));
const started = new Date();
const loadBefore = loadavg();
log(`FleetCron bench (${plan.quick ? "quick" : "full"}): ${only.join(", ")}; load ${loadBefore}`);

// Ctrl-C or a kill: exit through the "exit" handlers, which kill the agents, peers and FerretDBs and
// drop the throwaway PostgreSQL databases; the temp dir goes too.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => process.exit(130));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const sink = startSink({ slowMs: 600_000 });
const ferret = await startFerret("main", resultsDir);
// FerretDB's PostgreSQL handler beside its SQLite handler, when a PostgreSQL is there to run it on.
const pgNote = pg ? pgUnavailable() : "--no-pg";
let ferretPg: Ferret | null = null;
if (pgNote) log(`no FerretDB-pg rows: ${pgNote}`);
else {
  try {
    ferretPg = await startFerret("main", resultsDir, "pg");
  } catch (error) {
    log(`no FerretDB-pg rows: ${(error as Error).message}`);
  }
}
// The peers on PostgreSQL and Redis: a row that says why, when the server does not answer.
const pgbossNote = pgboss ? pgUnavailable() : "--no-pgboss";
const bullmqNote = bullmq ? redisUnavailable() : "--no-bullmq";
for (const [peer, note] of [["pg-boss", pgbossNote], ["BullMQ", bullmqNote]] as const) if (note) log(`no ${peer} rows: ${note}`);
let dbCounter = 0;
const ctx: Context = {
  plan,
  sink,
  ferret,
  ferretPg,
  ...(ferretPg ? {} : { pgNote: pgNote ?? "FerretDB with the PostgreSQL handler did not start" }),
  peerNotes: { pgboss: pgbossNote, bullmq: bullmqNote },
  tmp,
  resultsDir,
  db: (prefix) => `${prefix}_${++dbCounter}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 60),
};

const results: Record<string, unknown> = {};
const load: Record<string, string> = { start: loadBefore };
const run = async (name: Scenario, fn: () => Promise<unknown>) => {
  if (!only.includes(name)) return;
  const t0 = Date.now();
  log(`── ${name} (load ${loadavg()})`);
  load[`${name}_start`] = loadavg();
  try {
    for (const kind of ferretKinds(ctx)) await ensureFerret(ctx, kind);
    results[name] = await fn();
  } catch (error) {
    log(`${name} failed: ${(error as Error).stack ?? error}`);
    results[name] = { error: String((error as Error).message ?? error) };
  }
  load[`${name}_end`] = loadavg();
  log(`── ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
};

// pg-boss's every-minute rows run beside idle, lateness, fleet and failover, and join their results.
let track: MinuteTrack | null = null;
const trackWants = { lateness: only.includes("lateness"), failover: only.includes("failover") };
const finishTrack = async () => {
  if (!track) return;
  const t = track;
  track = null;
  try {
    const rows = await t.finish();
    if (Array.isArray(results.lateness)) (results.lateness as LatenessResult[]).push(...rows.lateness);
    const fo = results.failover as { failover?: FailoverResult[] } | undefined;
    if (rows.failover && Array.isArray(fo?.failover)) fo.failover.push(rows.failover);
  } catch (error) {
    log(`pg-boss every-minute rows failed: ${(error as Error).stack ?? error}`);
    results.pgboss_minute = { error: String((error as Error).message ?? error) };
  }
};
try {
  await run("binary", () => binary());
  if (!pgbossNote && (trackWants.lateness || trackWants.failover)) {
    try {
      track = await startPgbossMinuteTrack(ctx, trackWants);
    } catch (error) {
      log(`pg-boss every-minute rows not started: ${(error as Error).message}`);
      results.pgboss_minute = { error: String((error as Error).message ?? error) };
    }
  }
  await run("idle", () => idle(ctx));
  await run("lateness", () => lateness(ctx));
  await run("fleet", () => fleetLoad(ctx));
  await run("failover", () => failover(ctx));
  await finishTrack();
  await run("burst", () => burst(ctx));
} finally {
  await finishTrack().catch(() => {});
  await sink.stop();
  await ctx.ferret.stop();
  await ctx.ferretPg?.stop();
  rmSync(tmp, { recursive: true, force: true });
}

// A peer whose server did not answer (or was left out) gets a row that says so in each table.
for (const [system, store, note] of [["pg-boss", "PostgreSQL", pgbossNote], ["BullMQ", "Redis", bullmqNote]] as const) {
  if (!note) continue;
  const settings = `not run: ${note}`;
  if (Array.isArray(results.lateness)) (results.lateness as LatenessResult[]).push({ system, store, agents: 0, settings, due: 0, n: 0, p50_ms: null, p99_ms: null, max_ms: null, min_ms: null, missed: 0, duplicates: 0, by_machine: {}, cpu_pct: null });
  const fo = results.failover as { failover?: FailoverResult[]; takeover?: TakeoverResult[] } | undefined;
  if (Array.isArray(fo?.failover)) fo.failover.push({ system, settings: "—", kills: 0, samples: [], median_lateness_ms: null, median_gap_ms: null, max_lateness_ms: null, missed: 0, duplicates: 0, note: settings });
  if (Array.isArray(fo?.takeover)) fo.takeover.push({ system, settings: "—", samples_ms: [], median_ms: null, note: settings });
  if (Array.isArray(results.idle)) (results.idle as IdleResult[]).push({ system, settings, store, jobs: 0, window_s: 0, cpu_pct: null, rss_start_mb: null, rss_mb: null, rss_max_mb: null, store_ops_per_min: null, store_ops_how: settings });
}

load.end = loadavg();
const doc = {
  started: started.toISOString(),
  duration_s: Math.round((Date.now() - started.getTime()) / 1000),
  mode: plan.quick ? "quick" : "full",
  command: `bun run bench${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}`,
  agent: launch.bin ? `binary ${launch.bin}` : "bun src/main.ts",
  revision: gitRevision(),
  machine: machineInfo(),
  loadavg: load,
  plan,
  stores: {
    ferretdb: "FerretDB v1.24.2, SQLite handler",
    "ferretdb-pg": ferretPg ? `FerretDB v1.24.2, PostgreSQL handler (PostgreSQL ${pgServerVersion()})` : `not run: ${ctx.pgNote}`,
    pgboss: pgbossNote ? `not run: ${pgbossNote}` : `pg-boss ${packageVersion("pg-boss")} on PostgreSQL ${pgServerVersion()} (127.0.0.1, a schema per case in database test)`,
    bullmq: bullmqNote ? `not run: ${bullmqNote}` : `BullMQ ${packageVersion("bullmq")} (ioredis ${packageVersion("ioredis")}) on Redis ${redisServerVersion()} (127.0.0.1, a key prefix per case)`,
  },
  ...(ctx.replacedStores ? { replaced_stores: ctx.replacedStores } : {}),
  results,
};
const file = join(resultsDir, `${started.toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
process.stdout.write(`${report(doc)}\n`);
log(`results written to ${file}`);
process.exit(0);
