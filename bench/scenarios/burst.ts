import { rmSync } from "node:fs";
import { join } from "node:path";
import { dropDb, Fleet, insertJobs, readRuns } from "../lib/fleetcron.ts";
import type { Context } from "../lib/context.ts";
import { ferretQuiet, storeCpu, storeCpuDelta, type Ferret } from "../lib/ferret.ts";
import { bullmqPrefix, dropBullmqPrefix, REDIS_URL, redisServerPid, setupBullmq } from "../lib/bullmq.ts";
import { AGENDA_DEFAULT, AGENDA_TIGHT, insertAgendaJobs, startAgenda, startBullmq, startPgboss, type PeerProcess } from "../lib/peers.ts";
import { dropPgbossSchema, pgbossBackendPids, pgbossSchema, pgbossUrl, setupPgboss } from "../lib/pgboss.ts";
import { PGBOSS_DEFAULT_LABEL, PGBOSS_TIGHT_LABEL } from "../lib/pgboss-settings.ts";
import { BULLMQ_DEFAULT_LABEL, BULLMQ_TIGHT_LABEL } from "../lib/bullmq-settings.ts";
import { perAgent } from "../lib/sink.ts";
import { ensureFerret, ferretKinds, ferretOf, freshStore, type StoreKind } from "../lib/stores.ts";
import { cpuSeconds, log, nextSecond, percentile, round, sleep, waitFor } from "../lib/util.ts";

/**
 * Burst: N jobs all due in the same second. Time from that instant until every occurrence has
 * arrived at the sink, claims per second (from the run records' claim times), duplicates.
 */
export interface BurstResult {
  system: string;
  /** `ferretdb`: FerretDB's SQLite handler; `ferretdb-pg`: its PostgreSQL handler; the peers' PostgreSQL and Redis. */
  store: StoreKind | "PostgreSQL" | "Redis";
  /** The peer's settings (bench/lib/pgboss-settings.ts, bullmq-settings.ts). */
  settings?: string;
  agents: number;
  jobs: number;
  delivered: number;
  duplicates: number;
  /** Last arrival minus the instant, seconds (null when not all arrived within the cap). */
  all_delivered_s: number | null;
  first_delivery_ms: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  claims_per_s: number | null;
  deliveries_per_s: number | null;
  setup_s: number;
  /** CPU seconds used from the instant until the last delivery: the agents (summed), and FerretDB. */
  agent_cpu_s?: number | null;
  store_cpu_s?: number | null;
  /** Run records by status when the burst ended (attempt ≥ 2: taken over after a lost lease). */
  run_records?: Record<string, number>;
  /** FerretDB requests per occurrence, by command, from the instant until the last delivery. */
  store_ops_per_occurrence?: Record<string, number>;
  /** Deliveries per agent in agent order (`34/33/33`), multi-agent rows only. */
  per_agent?: string;
  note?: string;
}

function opsPer(before: Map<string, number>, after: Map<string, number>, occurrences: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [command, count] of after) {
    const d = count - (before.get(command) ?? 0);
    if (d > 0) (out[command] = round(d / occurrences, 2)!), (total += d);
  }
  return { total: round(total / occurrences, 2)!, ...out };
}

/** A 6-field cron due once a day at that second (UTC): a fleet of daily reports all set for 09:00:00. */
function cronFor(at: number): string {
  const d = new Date(at);
  return `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} * * *`;
}

function summarizeArrivals(ctx: Context, sys: string, at: number, n: number) {
  const arrivals = ctx.sink.of(sys);
  const byKey = new Map<string, number>();
  for (const a of arrivals) byKey.set(a.key, (byKey.get(a.key) ?? 0) + 1);
  const lateness = arrivals.map((a) => a.arrived - at);
  const last = arrivals.length ? Math.max(...arrivals.map((a) => a.arrived)) : null;
  const delivered = byKey.size;
  return {
    delivered,
    duplicates: arrivals.length - byKey.size,
    all_delivered_s: delivered >= n && last !== null ? round((last - at) / 1000, 2) : null,
    first_delivery_ms: lateness.length ? round(Math.min(...lateness), 1) : null,
    p50_ms: round(percentile(lateness, 50), 0),
    p99_ms: round(percentile(lateness, 99), 0),
    deliveries_per_s: delivered >= n && last !== null ? round(n / Math.max(0.001, (last - at) / 1000), 1) : round(delivered / ((Date.now() - at) / 1000), 2),
  };
}

async function fleetBurst(ctx: Context, kind: StoreKind, agents: number, n: number): Promise<BurstResult> {
  const sys = `fc-${kind}-${agents}-${n}`;
  const ferret = ferretOf(ctx, kind);
  let lead = 4000 + n * (ferret ? 1.2 : 0.6) * agents;
  for (let attempt = 1; ; attempt++) {
    const setupStart = Date.now();
    const store = freshStore(ctx, kind, kind === "sqlite" ? `${sys}-${attempt}` : `burst_${kind}_${agents}_${n}`);
    const at = nextSecond(lead);
    const url = `${ctx.sink.url}/burst?sys=${sys}&m={{machine_id}}`;
    await insertJobs(store, Array.from({ length: n }, (_, i) => ({ name: `burst-${i}`, enabled: true, cron: cronFor(at), tz: "UTC", method: "GET", url })));
    const fleet = new Fleet(sys, store, agents, {}, {});
    ctx.sink.clear(sys);
    let silent = false;
    try {
      const profile = ctx.plan.profileBurst && kind === "ferretdb" && agents === 1 && n === Math.max(...ctx.plan.burstSizesFerret);
      const profFlags = profile ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${join(ctx.resultsDir, "profiles")}`, `--cpu-prof-name=${sys}.cpuprofile`] : [];
      await Promise.all(fleet.agents.map((a, i) => sleep(i * 150).then(() => a.up(120_000, profFlags))));
      const setup = (Date.now() - setupStart) / 1000;
      if (Date.now() > at - 300) {
        log(`${sys}: agents were ready only ${Date.now() - at} ms after the instant; retrying with a longer lead`);
        if (attempt >= 3) return { system: "FleetCron", store: kind, agents, jobs: n, delivered: 0, duplicates: 0, all_delivered_s: null, first_delivery_ms: null, p50_ms: null, p99_ms: null, claims_per_s: null, deliveries_per_s: null, setup_s: setup, note: "agents not ready in time" };
        lead *= 2;
        continue;
      }
      log(`${sys}: ${n} jobs due at ${new Date(at).toISOString()} (agents ready ${((at - Date.now()) / 1000).toFixed(1)} s before)`);
      const storePids = ferret?.storePids() ?? [];
      await sleep(at - Date.now() - 50);
      const agentCpu0 = fleet.agents.map((a) => cpuSeconds(a.pid) ?? 0);
      const storeCpu0 = ferret ? storeCpu(storePids) : null;
      const ops0 = ferret ? await ferret.requests() : null;
      // Until all arrived or the cap; early when nothing arrived for 5 s and FerretDB no longer answers.
      let lastCount = 0;
      let lastChange = Date.now();
      await waitFor(async () => {
        const count = new Set(ctx.sink.of(sys).map((a) => a.key)).size;
        if (count >= n) return true;
        if (count !== lastCount) (lastCount = count), (lastChange = Date.now());
        else if (ferret && Date.now() - lastChange > 5000) {
          lastChange = Date.now();
          if (!(await ferret.answers(5000))) return true;
        }
        return false;
      }, at - Date.now() + ctx.plan.burstCapSec * 1000, 100);
      const agentCpu = fleet.agents.reduce((sum, a, i) => sum + ((cpuSeconds(a.pid) ?? 0) - agentCpu0[i]!), 0);
      const storeCpuS = storeCpu0 !== null && ferret ? storeCpuDelta(storeCpu0, storeCpu(ferret.storePids())) : null;
      const ops = ops0 && ferret ? opsPer(ops0, await ferret.requests(), n) : undefined;
      if (profile) {
        await fleet.down("SIGTERM"); // the profile is written on a clean exit
        log(`${sys}: CPU profile written to ${join(ctx.resultsDir, "profiles", `${sys}.cpuprofile`)} (and .md)`);
      }
      await sleep(300); // late duplicates, if any, would show up here
      const summary = summarizeArrivals(ctx, sys, at, n);
      // A FerretDB that stopped answering (FerretDB-pg has) has no run records to give: do not wait on it.
      silent = ferret ? !(await ferret.answers(3000)) : false;
      if (silent) log(`${sys}: ${ferret!.handler} FerretDB no longer answers a ping; no run records`);
      const allRuns = silent ? [] : await readRuns(store);
      const runs = allRuns.filter((r) => r.attempt === 1);
      const statuses: Record<string, number> = {};
      for (const r of allRuns) statuses[`${r.status}${r.attempt > 1 ? ` (attempt ${r.attempt})` : ""}`] = (statuses[`${r.status}${r.attempt > 1 ? ` (attempt ${r.attempt})` : ""}`] ?? 0) + 1;
      const lastClaim = runs.length ? Math.max(...runs.map((r) => r.claimed_at)) : null;
      const claims = runs.length >= n && lastClaim !== null ? round(n / Math.max(0.001, (lastClaim - at) / 1000), 0) : null;
      const split = perAgent(ctx.sink.of(sys), fleet.machineIds);
      log(`${sys}: ${summary.delivered}/${n} delivered, all in ${summary.all_delivered_s ?? "—"} s, claims/s ${claims ?? "—"}, per agent ${split.text}`);
      return { system: "FleetCron", store: kind, agents, jobs: n, ...summary, claims_per_s: claims, setup_s: round(setup, 1)!, agent_cpu_s: round(agentCpu, 2), store_cpu_s: round(storeCpuS, 2), run_records: statuses, ...(ops ? { store_ops_per_occurrence: ops } : {}), ...(agents > 1 ? { per_agent: split.text } : {}), ...(silent ? { note: "FerretDB no longer answers a ping" } : {}) };
    } finally {
      await fleet.down();
      fleet.cleanup();
      ctx.sink.clear(sys);
      if (store.kind === "sqlite") for (const suffix of ["", "-wal", "-shm"]) rmSync(store.path + suffix, { force: true });
      else if (!silent) await dropDb(store.uri, store.db); // a silent FerretDB is replaced, its PostgreSQL database dropped
    }
  }
}

async function agendaBurst(ctx: Context, settings: "default" | "tight", n: number): Promise<BurstResult> {
  const sys = `agenda-${settings}-${n}`;
  const db = ctx.db(`agenda_burst_${settings}_${n}`);
  const opts = settings === "default" ? AGENDA_DEFAULT : AGENDA_TIGHT;
  const setupStart = Date.now();
  const worker = startAgenda({ uri: ctx.ferret.uri, db, name: `${sys}-a`, sink: ctx.sink.url, sys, ...opts });
  ctx.sink.clear(sys);
  try {
    await worker.ready(120_000); // FerretDB may still be busy with the previous burst's leftovers
    const at = nextSecond(1500);
    await insertAgendaJobs(ctx.ferret.uri, db, n, at);
    const setup = (Date.now() - setupStart) / 1000;
    log(`${sys}: ${n} one-shot jobs due at ${new Date(at).toISOString()}`);
    await sleep(at - Date.now() - 50);
    const agentCpu0 = cpuSeconds(worker.proc.pid) ?? 0;
    const storeCpu0 = cpuSeconds(ctx.ferret.pid) ?? 0;
    const ops0 = await ctx.ferret.requests();
    await waitFor(() => new Set(ctx.sink.of(sys).map((a) => a.key)).size >= n, at - Date.now() + ctx.plan.agendaBurstCapSec * 1000, 100);
    const agentCpu = (cpuSeconds(worker.proc.pid) ?? 0) - agentCpu0;
    const storeCpu = (cpuSeconds(ctx.ferret.pid) ?? 0) - storeCpu0;
    const ops = opsPer(ops0, await ctx.ferret.requests(), Math.max(1, new Set(ctx.sink.of(sys).map((a) => a.key)).size));
    await sleep(300);
    const summary = summarizeArrivals(ctx, sys, at, n);
    log(`${sys}: ${summary.delivered}/${n} delivered, all in ${summary.all_delivered_s ?? "—"} s`);
    return {
      system: `Agenda (${settings})`,
      store: "ferretdb",
      agents: 1,
      jobs: n,
      ...summary,
      // Agenda's claim is its lock (findOneAndUpdate), taken just before the run: deliveries/s is its claim rate.
      claims_per_s: summary.deliveries_per_s,
      setup_s: round(setup, 1)!,
      agent_cpu_s: round(agentCpu, 2),
      store_cpu_s: round(storeCpu, 2),
      store_ops_per_occurrence: ops,
      ...(summary.all_delivered_s === null ? { note: `${summary.delivered} of ${n} within the ${ctx.plan.agendaBurstCapSec} s cap` } : {}),
    };
  } finally {
    await worker.kill();
    ctx.sink.clear(sys);
    await dropDb(ctx.ferret.uri, db);
  }
}

const storeCpuOf = (pids: number[]) => pids.reduce((sum, p) => sum + (cpuSeconds(p) ?? 0), 0);

/** Waits until all `n` arrived or `capSec` after the instant; then the row's figures. */
async function peerWatch(ctx: Context, sys: string, at: number, n: number, capSec: number, workers: PeerProcess[], storePids: () => number[]) {
  const pids0 = storePids(); // before the instant: psql holds the event loop for some 30 ms
  await sleep(at - Date.now() - 50);
  const agentCpu0 = workers.map((w) => cpuSeconds(w.proc.pid) ?? 0);
  const storeCpu0 = storeCpuOf(pids0);
  await waitFor(() => new Set(ctx.sink.of(sys).map((a) => a.key)).size >= n, at - Date.now() + capSec * 1000, 100);
  const agentCpu = workers.reduce((sum, w, i) => sum + (cpuSeconds(w.proc.pid) ?? 0) - agentCpu0[i]!, 0);
  const storeCpuS = storeCpuOf(pids0) - storeCpu0;
  await sleep(300); // late duplicates, if any, would show up here
  const summary = summarizeArrivals(ctx, sys, at, n);
  const split = perAgent(ctx.sink.of(sys), workers.map((w) => w.name));
  log(`${sys}: ${summary.delivered}/${n} delivered, all in ${summary.all_delivered_s ?? "—"} s${workers.length > 1 ? `, per worker ${split.text}` : ""}`);
  return {
    ...summary,
    // The peers record no claim time of their own: a job is claimed when a worker fetches it, just before its request.
    claims_per_s: null,
    agent_cpu_s: round(agentCpu, 2),
    store_cpu_s: round(storeCpuS, 2),
    ...(workers.length > 1 ? { per_agent: split.text } : {}),
    ...(summary.all_delivered_s === null ? { note: `${summary.delivered} of ${n} within the ${capSec} s cap` } : {}),
  };
}

/**
 * BullMQ: N job schedulers (`upsertJobScheduler()`), each a daily cron at the same second (as
 * FleetCron's N daily jobs), on 1 or 3 workers. The store CPU is the Redis server's.
 */
async function bullmqBurst(ctx: Context, tight: boolean, workers: number, n: number): Promise<BurstResult> {
  const sys = `bullmq-${tight ? "tight" : "default"}-${workers}-${n}`;
  const prefix = bullmqPrefix(sys);
  const procs = Array.from({ length: workers }, (_, i) => startBullmq({ redis: REDIS_URL, prefix, name: `${sys}-${"abc"[i]}`, sink: ctx.sink.url, sys, queue: "burst", tight }));
  ctx.sink.clear(sys);
  const setupStart = Date.now();
  try {
    await Promise.all(procs.map((p) => p.ready()));
    const at = nextSecond(1000 + n * 0.5);
    await setupBullmq(prefix, "burst", Array.from({ length: n }, (_, i) => ({ id: `b${i}`, pattern: cronFor(at), data: { i } })));
    const setup = (Date.now() - setupStart) / 1000;
    if (Date.now() > at - 200) throw new Error(`the ${n} schedulers were written only ${Date.now() - at} ms after their instant`);
    log(`${sys}: ${n} job schedulers due at ${new Date(at).toISOString()}`);
    const redisPid = redisServerPid();
    const figures = await peerWatch(ctx, sys, at, n, ctx.plan.peerBurstCapSec, procs, () => (redisPid ? [redisPid] : []));
    return { system: `BullMQ (${tight ? "tight" : "default"})`, store: "Redis", settings: tight ? BULLMQ_TIGHT_LABEL : BULLMQ_DEFAULT_LABEL, agents: workers, jobs: n, setup_s: round(setup, 1)!, ...figures };
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    ctx.sink.clear(sys);
    dropBullmqPrefix(prefix);
  }
}

/**
 * pg-boss: N schedules (`schedule()`, one queue, a key each), each a daily cron at the same minute,
 * on 1 or 3 workers. pg-boss's cron has minute precision, so the burst is N jobs due in the same
 * minute, timed from that minute's start. `prepare` writes the schedules ahead of the minute (other
 * burst cases run meanwhile, bench/scenarios/burst.ts); the workers start a few seconds before it.
 * The store CPU is the PostgreSQL backends serving the workers.
 */
function pgbossBurstCase(ctx: Context, tight: boolean, workers: number, n: number) {
  const sys = `pgboss-${tight ? "tight" : "default"}-${workers}-${n}`;
  const schema = pgbossSchema(sys.replace(/-/g, "_"));
  const schedules = (minute: number) => {
    const d = new Date(minute);
    return Array.from({ length: n }, (_, i) => ({ cron: `${d.getUTCMinutes()} ${d.getUTCHours()} * * *`, key: `b${i}`, data: { i } }));
  };
  let setupS = 0;
  return {
    sys,
    async prepare(minute: number) {
      const t0 = Date.now();
      await setupPgboss(schema, "burst", tight, schedules(minute));
      setupS = (Date.now() - t0) / 1000;
    },
    async run(minute: number): Promise<BurstResult> {
      let procs: PeerProcess[] = [];
      ctx.sink.clear(sys);
      try {
        // A case before this one ran long: the schedules move to the next minute.
        while (Date.now() > minute - 2000) {
          minute += 60_000;
          log(`${sys}: late for the minute; schedules moved to ${new Date(minute).toISOString()}`);
          await setupPgboss(schema, "burst", tight, schedules(minute));
        }
        await sleep(minute - 1500 - Date.now());
        procs = Array.from({ length: workers }, (_, i) => startPgboss({ url: pgbossUrl(), schema, name: `${sys}-${"abc"[i]}`, sink: ctx.sink.url, sys, queue: "burst", tight, max: 8 }));
        await Promise.all(procs.map((p) => p.ready()));
        log(`${sys}: ${n} schedules due in the minute ${new Date(minute).toISOString()}`);
        const figures = await peerWatch(ctx, sys, minute, n, ctx.plan.peerBurstCapSec, procs, () => pgbossBackendPids(sys));
        return { system: `pg-boss (${tight ? "tight" : "default"})`, store: "PostgreSQL", settings: `${tight ? PGBOSS_TIGHT_LABEL : PGBOSS_DEFAULT_LABEL}; same-minute jobs (minute precision)`, agents: workers, jobs: n, setup_s: round(setupS, 1)!, ...figures };
      } finally {
        await Promise.all(procs.map((p) => p.kill()));
        ctx.sink.clear(sys);
        dropPgbossSchema(schema);
      }
    },
  };
}

/** Waits (up to 3 min) until the FerretDB a case runs on is quiet. */
async function storeQuiet(ferret: Ferret | null): Promise<void> {
  if (ferret && !(await ferretQuiet(ferret))) log(`FerretDB (${ferret.handler}) still busy after 3 min; going on`);
}

export async function burst(ctx: Context): Promise<BurstResult[]> {
  const results: BurstResult[] = [];
  const { plan } = ctx;
  // One case failing (a process that does not start, say) is reported in its row; the rest go on.
  const attempt = async (system: string, store: BurstResult["store"], agents: number, n: number, run: () => Promise<BurstResult>) => {
    // FerretDB keeps working through requests a killed agent left queued: start on a quiet store
    // (a fresh one if it stopped answering). The peers' stores are not FerretDB.
    if (store !== "PostgreSQL" && store !== "Redis") {
      await ensureFerret(ctx, store);
      await storeQuiet(ferretOf(ctx, store));
    }
    try {
      results.push(await run());
    } catch (error) {
      log(`burst ${system} ${store} ×${agents} ${n}: ${(error as Error).message.split("\n")[0]}`);
      results.push({ system, store, agents, jobs: n, delivered: 0, duplicates: 0, all_delivered_s: null, first_delivery_ms: null, p50_ms: null, p99_ms: null, claims_per_s: null, deliveries_per_s: null, setup_s: 0, note: `failed: ${(error as Error).message.split("\n")[0]}` });
    }
  };
  // The cases that can start at any second, with a rough upper bound of how long each takes (its
  // lead, its deliveries, stopping): they fill the wait for the minute a pg-boss case is due at.
  const cases: { estimateMs: number; run: () => Promise<void> }[] = [];
  const lead = (n: number, agents: number, kind: StoreKind) => 4000 + n * (kind === "sqlite" ? 0.6 : 1.2) * agents;
  const fleetCase = (kind: StoreKind, agents: number, n: number) =>
    cases.push({ estimateMs: lead(n, agents, kind) + n * (kind === "sqlite" ? 1 : 5) + 8000, run: () => attempt("FleetCron", kind, agents, n, () => fleetBurst(ctx, kind, agents, n)) });
  for (const n of plan.burstSizes) for (const agents of [1, 3]) fleetCase("sqlite", agents, n);
  for (const n of plan.burstSizesFerret) {
    // Both FerretDB handlers, same FleetCron: the difference between their rows is FerretDB's backend.
    // Quick runs FerretDB-pg with 3 agents only (time; and one agent's 100 concurrent requests have wedged it).
    for (const kind of ferretKinds(ctx)) for (const agents of plan.quick && kind === "ferretdb-pg" ? [3] : [1, 3]) fleetCase(kind, agents, n);
    cases.push({ estimateMs: 10_000 + n * 20, run: () => attempt("Agenda (tight)", "ferretdb", 1, n, () => agendaBurst(ctx, "tight", n)) });
    // Agenda's defaults (concurrency 5, a scan every 5 s) only at the smallest size.
    if (plan.agendaDefaultBurst && n === plan.burstSizesFerret[0]) cases.push({ estimateMs: 10_000 + n * 100, run: () => attempt("Agenda (default)", "ferretdb", 1, n, () => agendaBurst(ctx, "default", n)) });
  }
  const peerRow = (system: string, store: "PostgreSQL" | "Redis", agents: number, n: number, note: string): BurstResult => ({ system, store, agents, jobs: n, delivered: 0, duplicates: 0, all_delivered_s: null, first_delivery_ms: null, p50_ms: null, p99_ms: null, claims_per_s: null, deliveries_per_s: null, setup_s: 0, note });
  for (const n of plan.peerBurstSizes) {
    for (const workers of [1, 3]) {
      const bullmq = async (tight: boolean) => {
        const system = `BullMQ (${tight ? "tight" : "default"})`;
        if (ctx.peerNotes.bullmq) return void results.push(peerRow(system, "Redis", workers, n, `not run: ${ctx.peerNotes.bullmq}`));
        await attempt(system, "Redis", workers, n, () => bullmqBurst(ctx, tight, workers, n));
      };
      cases.push({ estimateMs: 5000 + n * 2, run: () => bullmq(true) });
      // BullMQ's defaults (concurrency 1 per worker) only at the smallest size, as for Agenda.
      if (plan.agendaDefaultBurst && n === plan.peerBurstSizes[0]) cases.push({ estimateMs: 8000 + n * 10, run: () => bullmq(false) });
    }
  }
  // pg-boss cases are due at a minute boundary each; the other cases run while each one waits.
  const minuteCases: { tight: boolean; workers: number; n: number }[] = [];
  // Each waits for a minute boundary: one worker only at the smallest size.
  for (const n of plan.peerBurstSizes) for (const workers of plan.pgbossBurstWorkers) if (workers > 1 || n === plan.peerBurstSizes[0]) minuteCases.push({ tight: true, workers, n });
  if (plan.agendaDefaultBurst) minuteCases.push({ tight: false, workers: 3, n: plan.peerBurstSizes[0]! });
  for (const { tight, workers, n } of minuteCases) {
    const system = `pg-boss (${tight ? "tight" : "default"})`;
    if (ctx.peerNotes.pgboss) {
      results.push(peerRow(system, "PostgreSQL", workers, n, `not run: ${ctx.peerNotes.pgboss}`));
      continue;
    }
    const mc = pgbossBurstCase(ctx, tight, workers, n);
    const minute = Math.ceil((Date.now() + 15_000 + n * 2) / 60_000) * 60_000;
    try {
      await mc.prepare(minute);
    } catch (error) {
      results.push(peerRow(system, "PostgreSQL", workers, n, `failed: ${(error as Error).message.split("\n")[0]}`));
      continue;
    }
    // Any case that fits before the minute (with 2 s to spare for starting the pg-boss workers), in order.
    for (let i = 0; i < cases.length; ) {
      if (minute - Date.now() > cases[i]!.estimateMs + 2000) await cases.splice(i, 1)[0]!.run();
      else i++;
    }
    await attempt(system, "PostgreSQL", workers, n, () => mc.run(minute));
  }
  for (const c of cases) await c.run();
  // The table in the usual order (the cases ran in another, around the pg-boss minutes).
  return results.sort((a, b) => rowOrder(a).localeCompare(rowOrder(b)));
}

/** FleetCron on SQLite by size, then by FerretDB size (each handler, Agenda), then BullMQ, then pg-boss. */
export function rowOrder(x: BurstResult): string {
  const pad = (n: number) => String(n).padStart(7, "0");
  const group = x.system === "FleetCron" && x.store === "sqlite" ? 0 : x.system === "FleetCron" || x.system.startsWith("Agenda") ? 1 : x.system.startsWith("BullMQ") ? 2 : 3;
  const within = x.system === "FleetCron" ? (x.store === "ferretdb-pg" ? 1 : 0) : x.system.includes("default") ? 3 : 2;
  return `${group}${pad(x.jobs)}${within}${pad(x.agents)}`;
}
