import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import type { Context } from "../lib/context.ts";
import { dropDb, Fleet, type Agent } from "../lib/fleetcron.ts";
import { perAgent, type Arrival } from "../lib/sink.ts";
import { AGENDA_DEFAULT, AGENDA_TIGHT_FAILOVER, startAgenda, startBullmq, startPgboss, type PeerProcess } from "../lib/peers.ts";
import { addBullmqJob, bullmqPrefix, dropBullmqPrefix, REDIS_URL, setupBullmq } from "../lib/bullmq.ts";
import { BULLMQ_DEFAULT_LABEL, BULLMQ_TIGHT_LABEL } from "../lib/bullmq-settings.ts";
import { dropPgbossSchema, pgbossSchema, pgbossUrl, sendPgbossJob, setupPgboss } from "../lib/pgboss.ts";
import { PGBOSS_DEFAULT_LABEL, PGBOSS_TIGHT_LABEL } from "../lib/pgboss-settings.ts";
import { log, median, nextSecond, round, sleep, waitFor } from "../lib/util.ts";

/**
 * Failover: a job due every second; SIGKILL the machine that fires it, 300 ms after an occurrence
 * (so no request is in flight), and time the first occurrence that another machine delivers.
 *   - `lateness_ms`: that occurrence's arrival minus its scheduled instant, the figure the target
 *     `failover_step_sec + 0.5 s` is about (the standby's stagger plus what it costs to fire).
 *   - `gap_ms`: that arrival minus the kill.
 * Mid-run takeover: a request that takes minutes; SIGKILL the agent running it; time until attempt 2
 * arrives from another agent (lease expiry + detection + re-claim).
 * All fleets and peers run side by side on one FerretDB.
 */
export interface KillSample {
  lateness_ms: number;
  gap_ms: number;
  missed: number;
}

/** The figures of a failover row that come from its kill samples (the same for every system). */
export function killFigures(samples: KillSample[]): Pick<FailoverResult, "kills" | "samples" | "median_lateness_ms" | "median_gap_ms" | "max_lateness_ms" | "missed"> {
  const lat = samples.map((s) => s.lateness_ms);
  return {
    kills: samples.length,
    samples,
    median_lateness_ms: round(median(lat), 0),
    median_gap_ms: round(median(samples.map((s) => s.gap_ms)), 0),
    max_lateness_ms: lat.length ? Math.max(...lat) : null,
    missed: samples.reduce((s, x) => s + x.missed, 0),
  };
}

export interface FailoverResult {
  system: string;
  settings: string;
  kills: number;
  samples: KillSample[];
  median_lateness_ms: number | null;
  median_gap_ms: number | null;
  max_lateness_ms: number | null;
  missed: number;
  duplicates: number;
  /** Deliveries per machine over the whole run, in machine order (a/b/c): who fired, kills included. */
  per_agent?: string;
  target_ms?: number;
  note?: string;
}

export interface TakeoverResult {
  system: string;
  settings: string;
  samples_ms: number[];
  median_ms: number | null;
  /** Attempts that arrived, per agent (a/b/c): attempt 1 on the victim, attempt 2 on a survivor. */
  per_agent?: string;
  note?: string;
}

const firstAfter = (arrivals: Arrival[], killedAt: number, victim: string) => arrivals.find((a) => a.scheduled > killedAt && a.machine !== victim);

function duplicatesOf(arrivals: Arrival[]): number {
  const keys = new Set<string>();
  let dup = 0;
  for (const a of arrivals) if (keys.has(a.key)) dup++;
  else keys.add(a.key);
  return dup;
}

/** Instants in [from, to) with no arrival. */
function missedBetween(arrivals: Arrival[], from: number, to: number): number {
  const got = new Set(arrivals.map((a) => a.scheduled));
  let missed = 0;
  for (let t = Math.ceil(from / 1000) * 1000; t < to; t += 1000) if (!got.has(t)) missed++;
  return missed;
}

async function killAtPhase(): Promise<number> {
  await sleep(nextSecond(200) + 300 - Date.now());
  return Date.now();
}

async function fleetFailover(ctx: Context, fleet: Fleet, settings: string, stepSec: number): Promise<FailoverResult> {
  const sys = fleet.name;
  const samples: KillSample[] = [];
  for (let k = 0; k < ctx.plan.kills; k++) {
    await waitFor(() => ctx.sink.count(sys) > 0, 30_000);
    const last = ctx.sink.of(sys).at(-1)!;
    const victim = fleet.agents.find((a) => a.machineId === last.machine) as Agent;
    const killedAt = await killAtPhase();
    await victim.kill("SIGKILL");
    const ok = await waitFor(() => firstAfter(ctx.sink.of(sys), killedAt, victim.machineId) !== undefined, stepSec * 1000 * 3 + 20_000, 20);
    const first = firstAfter(ctx.sink.of(sys), killedAt, victim.machineId);
    if (ok && first) {
      const missed = missedBetween(ctx.sink.of(sys), killedAt - 1000, first.scheduled);
      samples.push({ lateness_ms: round(first.arrived - first.scheduled, 1)!, gap_ms: round(first.arrived - killedAt, 1)!, missed });
      log(`${sys}: kill ${k + 1}: ${victim.machineId} killed; ${first.machine} delivered ${new Date(first.scheduled).toISOString().slice(11, 19)} ${(first.arrived - first.scheduled).toFixed(0)} ms late, ${(first.arrived - killedAt).toFixed(0)} ms after the kill`);
    } else {
      // Kept for a post-mortem: every agent's log and what the sink saw after the kill.
      const file = join(ctx.resultsDir, `failover-${sys}-kill${k + 1}-${new Date(killedAt).toISOString().replace(/[:.]/g, "-")}.log`);
      const after = ctx.sink.of(sys).filter((a) => a.arrived > killedAt - 2000).map((a) => `${new Date(a.arrived).toISOString()} ${a.machine} ${new Date(a.scheduled).toISOString()}`);
      writeFileSync(file, [`killed ${victim.machineId} at ${new Date(killedAt).toISOString()}`, "sink:", ...after, ...fleet.agents.map((a) => `--- ${a.machineId} (${a.logPath})\n${a.log().split("\n").slice(-80).join("\n")}`)].join("\n"));
      log(`${sys}: kill ${k + 1}: no failover delivery within ${stepSec * 3 + 20} s (logs in ${file})`);
    }
    // Bring the victim back; with its machine id it keeps its serial and fires first again.
    await victim.up();
    await waitFor(() => ctx.sink.of(sys).some((a) => a.machine === victim.machineId && a.arrived > Date.now() - 1500), 20_000, 100);
    await sleep(1500);
  }
  return {
    system: "FleetCron",
    settings,
    ...killFigures(samples),
    duplicates: duplicatesOf(ctx.sink.of(sys)),
    per_agent: perAgent(ctx.sink.of(sys), fleet.machineIds).text,
    target_ms: stepSec * 1000 + 500,
  };
}

/** The Agenda worker holding the job's lock right now (Agenda has no primary: whoever locked it runs it). */
async function lockHolder(uri: string, db: string): Promise<string | null> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, socketTimeoutMS: 120_000 });
  try {
    const job = await client.db(db).collection("agendaJobs").findOne({ name: "ping" });
    return (job?.lockedAt ? job.lastModifiedBy : null) ?? job?.lastModifiedBy ?? null;
  } finally {
    await client.close();
  }
}

async function agendaFailover(ctx: Context, settings: "default" | "tight", kills: number, capSec: number): Promise<FailoverResult> {
  const sys = `fo-agenda-${settings}`;
  const db = ctx.db(sys.replace(/-/g, "_"));
  const opts = settings === "default" ? AGENDA_DEFAULT : AGENDA_TIGHT_FAILOVER;
  const spawn = (name: string, recurring: string | null) => startAgenda({ uri: ctx.ferret.uri, db, name, sink: ctx.sink.url, sys, ...opts, recurring });
  const workers = new Map<string, PeerProcess>([[`${sys}-a`, spawn(`${sys}-a`, "* * * * * *")]]);
  await workers.get(`${sys}-a`)!.ready();
  workers.set(`${sys}-b`, spawn(`${sys}-b`, null));
  const samples: KillSample[] = [];
  let note: string | undefined;
  try {
    await workers.get(`${sys}-b`)!.ready();
    for (let k = 0; k < kills; k++) {
      await waitFor(() => ctx.sink.count(sys) > 2, 30_000);
      const killedAt = await killAtPhase();
      const holder = (await lockHolder(ctx.ferret.uri, db)) ?? ctx.sink.of(sys).at(-1)!.machine;
      await workers.get(holder)!.kill("SIGKILL");
      const ok = await waitFor(() => firstAfter(ctx.sink.of(sys), killedAt, holder) !== undefined, capSec * 1000, 20);
      const first = firstAfter(ctx.sink.of(sys), killedAt, holder);
      if (ok && first) {
        samples.push({ lateness_ms: round(first.arrived - first.scheduled, 1)!, gap_ms: round(first.arrived - killedAt, 1)!, missed: missedBetween(ctx.sink.of(sys), killedAt - 1000, first.scheduled) });
        log(`${sys}: kill ${k + 1}: ${holder} killed; ${first.machine} delivered ${(first.arrived - first.scheduled).toFixed(0)} ms late, ${(first.arrived - killedAt).toFixed(0)} ms after the kill`);
      } else {
        note = `no delivery within ${capSec} s of the kill (a dead worker's lock is released after defaultLockLifetime, 10 min by default)`;
        log(`${sys}: kill ${k + 1}: ${note}`);
        break;
      }
      const again = spawn(holder, null);
      workers.set(holder, again);
      await again.ready();
      await sleep(2000);
    }
  } finally {
    await Promise.all([...workers.values()].map((w) => w.kill()));
    await dropDb(ctx.ferret.uri, db);
  }
  return {
    system: `Agenda (${settings})`,
    settings: settings === "default" ? "processEvery 5 s, defaultLockLifetime 10 min" : `processEvery ${AGENDA_TIGHT_FAILOVER.processEvery / 1000} s, defaultLockLifetime ${AGENDA_TIGHT_FAILOVER.lockLifetime / 1000} s`,
    ...killFigures(samples),
    duplicates: duplicatesOf(ctx.sink.of(sys)),
    per_agent: perAgent(ctx.sink.of(sys), [`${sys}-a`, `${sys}-b`]).text,
    ...(note ? { note } : {}),
  };
}

/**
 * BullMQ on 3 workers, one job scheduler every second: SIGKILL the worker that delivered the last
 * occurrence, 300 ms after its instant, and time the first occurrence another worker delivers.
 */
async function bullmqFailover(ctx: Context, tight: boolean): Promise<FailoverResult> {
  const sys = `fo-bullmq-${tight ? "tight" : "default"}`;
  const prefix = bullmqPrefix(sys);
  const names = ["a", "b", "c"].map((x) => `${sys}-${x}`);
  const spawn = (name: string) => startBullmq({ redis: REDIS_URL, prefix, name, sink: ctx.sink.url, sys, queue: "tick", tight });
  const samples: KillSample[] = [];
  let note: string | undefined;
  const workers = new Map<string, PeerProcess>();
  try {
    await setupBullmq(prefix, "tick", [{ id: "tick", pattern: "* * * * * *" }]);
    for (const name of names) workers.set(name, spawn(name));
    await Promise.all([...workers.values()].map((w) => w.ready()));
    for (let k = 0; k < ctx.plan.kills; k++) {
      await waitFor(() => ctx.sink.count(sys) > 2, 30_000);
      const killedAt = await killAtPhase();
      const holder = ctx.sink.of(sys).at(-1)!.machine;
      await workers.get(holder)!.kill("SIGKILL");
      const ok = await waitFor(() => firstAfter(ctx.sink.of(sys), killedAt, holder) !== undefined, 30_000, 20);
      const first = firstAfter(ctx.sink.of(sys), killedAt, holder);
      if (!ok || !first) {
        note = "no delivery within 30 s of the kill";
        break;
      }
      samples.push({ lateness_ms: round(first.arrived - first.scheduled, 1)!, gap_ms: round(first.arrived - killedAt, 1)!, missed: missedBetween(ctx.sink.of(sys), killedAt - 1000, first.scheduled) });
      log(`${sys}: kill ${k + 1}: ${holder} killed; ${first.machine} delivered ${(first.arrived - first.scheduled).toFixed(0)} ms late, ${(first.arrived - killedAt).toFixed(0)} ms after the kill`);
      const again = spawn(holder);
      workers.set(holder, again);
      await again.ready();
      await sleep(1500);
    }
  } finally {
    await Promise.all([...workers.values()].map((w) => w.kill()));
    dropBullmqPrefix(prefix);
  }
  return {
    system: `BullMQ (${tight ? "tight" : "default"})`,
    settings: `${tight ? BULLMQ_TIGHT_LABEL : BULLMQ_DEFAULT_LABEL}; 3 workers`,
    ...killFigures(samples),
    duplicates: duplicatesOf(ctx.sink.of(sys)),
    per_agent: perAgent(ctx.sink.of(sys), names).text,
    ...(note ? { note } : {}),
  };
}

/**
 * A peer's mid-run kill: one job whose request takes minutes (the sink's /slow), on 3 workers;
 * SIGKILL the worker whose request arrived and time until the request arrives again (the peer's
 * retry of a job whose worker died), up to `capSec`.
 */
async function peerTakeover(ctx: Context, peer: "pg-boss" | "BullMQ", tight: boolean, times: number, capSec: number): Promise<TakeoverResult> {
  const sys = `to-${peer === "pg-boss" ? "pgboss" : "bullmq"}-${tight ? "tight" : "default"}`;
  const names = ["a", "b", "c"].map((x) => `${sys}-${x}`);
  const label = sys.replace(/-/g, "_");
  const schema = pgbossSchema(label);
  const prefix = bullmqPrefix(label);
  const spawn = (name: string) =>
    peer === "pg-boss"
      ? startPgboss({ url: pgbossUrl(), schema, name, sink: ctx.sink.url, sys, queue: "slow", tight, max: 3, path: "slow" })
      : startBullmq({ redis: REDIS_URL, prefix, name, sink: ctx.sink.url, sys, queue: "slow", tight, path: "slow" });
  const workers = new Map<string, PeerProcess>();
  const samples: number[] = [];
  let note: string | undefined;
  try {
    if (peer === "pg-boss") await setupPgboss(schema, "slow", tight, []);
    for (const name of names) workers.set(name, spawn(name));
    await Promise.all([...workers.values()].map((w) => w.ready()));
    for (let i = 0; i < times; i++) {
      const data = { at: Date.now(), i };
      if (peer === "pg-boss") await sendPgbossJob(schema, "slow", data);
      else await addBullmqJob(prefix, "slow", data);
      const key = `${sys}:b${i}@${data.at}`;
      const attempts = () => ctx.sink.of(sys).filter((a) => a.key === key);
      if (!(await waitFor(() => attempts().length >= 1, 30_000, 20))) {
        note = "the slow job never started";
        break;
      }
      const victim = attempts()[0]!.machine;
      await workers.get(victim)!.kill("SIGKILL");
      const killedAt = Date.now();
      if (!(await waitFor(() => attempts().length >= 2, capSec * 1000, 20))) {
        note =
          peer === "pg-boss"
            ? `no second attempt within ${capSec} s: pg-boss retries a dead worker's job when it expires (expireInSeconds, 15 min by default) or, with heartbeatSeconds set, when its heartbeat is missed`
            : `no second attempt within ${capSec} s: BullMQ re-runs a stalled job after its lock expires (lockDuration 30 s) at the next stalled check (every 30 s)`;
        break;
      }
      const second = attempts()[1]!;
      samples.push(round(second.arrived - killedAt, 0)!);
      log(`${sys}: mid-run kill ${i + 1}: attempt 2 from ${second.machine} ${(second.arrived - killedAt).toFixed(0)} ms after the SIGKILL`);
      const again = spawn(victim);
      workers.set(victim, again);
      await again.ready();
    }
  } finally {
    await Promise.all([...workers.values()].map((w) => w.kill()));
    if (peer === "pg-boss") dropPgbossSchema(schema);
    else dropBullmqPrefix(prefix);
  }
  const settings =
    peer === "pg-boss"
      ? tight
        ? `${PGBOSS_TIGHT_LABEL}; queue heartbeatSeconds 10, retryDelay 0; supervise and monitor every 1 s`
        : PGBOSS_DEFAULT_LABEL.replace(")", ", expireInSeconds 900, monitor every 60 s)")
      : tight
        ? BULLMQ_TIGHT_LABEL
        : BULLMQ_DEFAULT_LABEL;
  return { system: `${peer} (${tight ? "tight" : "default"})`, settings, samples_ms: samples, median_ms: round(median(samples), 0), per_agent: perAgent(ctx.sink.of(sys), names).text, ...(note ? { note } : {}) };
}

async function takeover(ctx: Context, fleet: Fleet, settings: string, heartbeatSec: number, times: number): Promise<TakeoverResult> {
  const sys = fleet.name;
  const samples: number[] = [];
  let note: string | undefined;
  for (let i = 0; i < times; i++) {
    const at = nextSecond(heartbeatSec * 1000 + 3000);
    const d = new Date(at);
    await fleet.apply([{ name: `slow-${i}`, cron: `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} * * *`, url: `${ctx.sink.url}/slow?sys=${sys}&m={{machine_id}}`, timeout_sec: 3000 }]);
    const ok = await waitFor(() => ctx.sink.count(sys) > 2 * i, heartbeatSec * 1000 + 30_000, 20);
    if (!ok) {
      note = "the slow job never started";
      break;
    }
    const first = ctx.sink.of(sys)[2 * i]!;
    const victim = fleet.agents.find((a) => a.machineId === first.machine)!;
    await victim.kill("SIGKILL");
    const killedAt = Date.now();
    const done = await waitFor(() => ctx.sink.of(sys).filter((a) => a.key === first.key).length >= 2, 180_000, 20);
    if (!done) {
      note = "no second attempt within 180 s";
      break;
    }
    const second = ctx.sink.of(sys).filter((a) => a.key === first.key)[1]!;
    samples.push(round(second.arrived - killedAt, 0)!);
    log(`${sys}: mid-run takeover ${i + 1}: attempt 2 from ${second.machine} ${(second.arrived - killedAt).toFixed(0)} ms after the SIGKILL`);
    await victim.up();
  }
  return { system: "FleetCron", settings, samples_ms: samples, median_ms: round(median(samples), 0), per_agent: perAgent(ctx.sink.of(sys), fleet.machineIds).text, ...(note ? { note } : {}) };
}

export async function failover(ctx: Context): Promise<{ failover: FailoverResult[]; takeover: TakeoverResult[] }> {
  const tight = { heartbeat_sec: 0.5, dead_after_sec: 2, failover_step_sec: 1, lease_sec: 3 };
  const fleets = {
    step5: new Fleet("fo-step5", { kind: "mongo", uri: ctx.ferret.uri, db: ctx.db("fo_step5") }, 3),
    step1: new Fleet("fo-step1", { kind: "mongo", uri: ctx.ferret.uri, db: ctx.db("fo_step1") }, 3, { failover_step_sec: 1 }),
    takeTight: new Fleet("to-tight", { kind: "mongo", uri: ctx.ferret.uri, db: ctx.db("to_tight") }, 3, tight),
    ...(ctx.plan.takeoverDefault ? { takeDefault: new Fleet("to-default", { kind: "mongo", uri: ctx.ferret.uri, db: ctx.db("to_default") }, 3) } : {}),
  };
  const all = Object.values(fleets) as Fleet[];
  try {
    await Promise.all(all.map((f) => f.up()));
    await Promise.all([fleets.step5, fleets.step1].map((f) => f.apply([{ name: "tick", every: "1s", url: `${ctx.sink.url}/tick?sys=${f.name}&m={{machine_id}}` }])));
    const pb = !ctx.peerNotes.pgboss;
    const bq = !ctx.peerNotes.bullmq;
    const none = Promise.resolve(null);
    const [step5, step1, agendaTight, agendaDefault, takeTight, takeDefault, bqTight, bqDefault, ...peerTakeovers] = await Promise.all([
      fleetFailover(ctx, fleets.step5, "defaults (failover_step_sec 5, dead_after_sec 15)", 5),
      fleetFailover(ctx, fleets.step1, "failover_step_sec 1 (others default)", 1),
      agendaFailover(ctx, "tight", ctx.plan.kills, 30),
      agendaFailover(ctx, "default", 1, ctx.plan.agendaDefaultFailoverCapSec),
      takeover(ctx, fleets.takeTight, "heartbeat_sec 0.5, dead_after_sec 2, lease_sec 3", 0.5, ctx.plan.quick ? 1 : 3),
      fleets.takeDefault ? takeover(ctx, fleets.takeDefault, "defaults (lease_sec 30, heartbeat_sec 5)", 5, 1) : Promise.resolve(null),
      bq ? bullmqFailover(ctx, true) : none,
      bq ? bullmqFailover(ctx, false) : none,
      pb ? peerTakeover(ctx, "pg-boss", true, ctx.plan.quick ? 1 : 3, 60) : none,
      pb && ctx.plan.takeoverDefault ? peerTakeover(ctx, "pg-boss", false, 1, 120) : none,
      bq ? peerTakeover(ctx, "BullMQ", true, ctx.plan.quick ? 1 : 3, 30) : none,
      bq && ctx.plan.takeoverDefault ? peerTakeover(ctx, "BullMQ", false, 1, 90) : none,
    ]);
    // pg-boss's failover row comes from its every-minute rows (bench/scenarios/pgboss-minute.ts).
    return {
      failover: [step5, step1, agendaTight, agendaDefault, ...[bqTight, bqDefault].filter((x): x is FailoverResult => x !== null)],
      takeover: [takeTight, ...(takeDefault ? [takeDefault] : []), ...peerTakeovers.filter((x): x is TakeoverResult => x !== null)],
    };
  } finally {
    await Promise.all(all.map((f) => f.down()));
    for (const f of all) {
      f.cleanup();
      if (f.store.kind === "mongo") await dropDb(f.store.uri, f.store.db);
    }
  }
}
