import type { Context } from "../lib/context.ts";
import { dropPgbossSchema, pgbossSchema, pgbossUrl, setupPgboss } from "../lib/pgboss.ts";
import { PGBOSS_DEFAULT_LABEL, PGBOSS_TIGHT_LABEL } from "../lib/pgboss-settings.ts";
import { startPgboss, type PeerProcess } from "../lib/peers.ts";
import { perAgent, type Arrival } from "../lib/sink.ts";
import { cpuSeconds, log, round, sleep, waitFor } from "../lib/util.ts";
import { killFigures, type FailoverResult, type KillSample } from "./failover.ts";
import { latenessFigures, type LatenessResult } from "./lateness.ts";

/**
 * pg-boss's lateness and failover rows. pg-boss's cron sends at most one job per schedule per
 * minute (its throttle slot is 60 s wide, whatever the expression says), so its every-second
 * measures become every-minute ones, and a minute-precision window does not fit the others'
 * 20 s (quick) window. So these run in the background for the length of the run's other
 * scenarios (from before idle to the end of failover), each row in a schema of its own:
 *   - lateness: an every-minute job (`* * * * *`) on 1 worker with the tight settings, on 3, and on
 *     1 with pg-boss's defaults; arrival minus the minute;
 *   - failover: an every-minute job on 3 tight workers; the worker that delivered an occurrence is
 *     SIGKILLed 300 ms after its request arrived, and the next minute's delivery (by a survivor) is
 *     the sample; the victim is started again and the next kill takes whoever fired last.
 * Duplicates and misses are counted as for the every-second rows: per instant.
 */
const MINUTE = 60_000;
/** An instant counts (as delivered or missed) once this long has passed: pg-boss's defaults (a pass every 30 s, the cron worker every 5 s, a 2 s poll) deliver within ~40 s. */
const SETTLE_MS = 45_000;

interface Row {
  sys: string;
  label: string;
  settings: string;
  tight: boolean;
  workers: PeerProcess[];
  schema: string;
  cpu0?: number[];
}

export interface MinuteTrack {
  finish(): Promise<{ lateness: LatenessResult[]; failover: FailoverResult | null }>;
}

export async function startPgbossMinuteTrack(ctx: Context, want: { lateness: boolean; failover: boolean }): Promise<MinuteTrack> {
  const { sink, plan } = ctx;
  const spawn = (row: Row, name: string) =>
    startPgboss({ url: pgbossUrl(), schema: row.schema, name, sink: sink.url, sys: row.sys, queue: "tick", tight: row.tight, max: 3 });
  const defs = [
    ...(want.lateness
      ? [
          { sys: "pb-lat-tight-1", label: "pg-boss (tight)", tight: true, n: 1 },
          { sys: "pb-lat-tight-3", label: "pg-boss (tight)", tight: true, n: 3 },
          { sys: "pb-lat-default-1", label: "pg-boss (default)", tight: false, n: 1 },
        ]
      : []),
    ...(want.failover ? [{ sys: "pb-fo-tight-3", label: "pg-boss (tight)", tight: true, n: 3 }] : []),
  ];
  const rows: (Row & { n: number })[] = defs.map((d) => ({ ...d, settings: d.tight ? PGBOSS_TIGHT_LABEL : PGBOSS_DEFAULT_LABEL, workers: [], schema: pgbossSchema(d.sys.replace(/-/g, "_")) }));
  for (const row of rows) {
    await setupPgboss(row.schema, "tick", row.tight, [{ cron: "* * * * *" }]);
    for (let i = 0; i < row.n; i++) row.workers.push(spawn(row, `${row.sys}-${"abc"[i]}`));
  }
  await Promise.all(rows.flatMap((r) => r.workers.map((w) => w.ready())));
  // The first whole minute after every worker runs; the occurrence pg-boss sends at start-up for the
  // minute already under way (its due window is the last 60 s) is not measured.
  const from = Math.ceil((Date.now() + 1000) / MINUTE) * MINUTE;
  log(`pg-boss every-minute rows (${rows.map((r) => `${r.sys}×${r.n}`).join(", ")}) measure from ${new Date(from).toISOString()}`);
  const pids = (r: Row) => r.workers.map((w) => w.proc.pid);
  void sleep(from - Date.now()).then(() => {
    for (const r of rows) r.cpu0 = pids(r).map((p) => cpuSeconds(p) ?? 0);
  });

  // Failover loop, in the background until finish().
  let stopping = false;
  const samples: KillSample[] = [];
  const fo = rows.find((r) => r.sys.startsWith("pb-fo"));
  const machineIds = (r: Row & { n: number }) => Array.from({ length: r.n }, (_, i) => `${r.sys}-${"abc"[i]}`);
  const failoverLoop = (async () => {
    if (!fo) return;
    let lastScheduled = from - 1;
    while (!stopping && samples.length < plan.minuteKills) {
      const trigger = () => sink.of(fo.sys).find((a) => a.scheduled > lastScheduled);
      if (!(await waitFor(() => stopping || trigger() !== undefined, 3 * MINUTE, 100)) || stopping) return;
      const fired = trigger()!;
      await sleep(fired.arrived + 300 - Date.now());
      const victim = fo.workers.findIndex((w) => w.name === fired.machine);
      if (victim < 0) return;
      const killedAt = Date.now();
      await fo.workers[victim]!.kill("SIGKILL");
      const next = () => sink.of(fo.sys).find((a) => a.scheduled > killedAt && a.machine !== fired.machine);
      const ok = await waitFor(() => stopping || next() !== undefined, 2 * MINUTE + SETTLE_MS, 50);
      const first = next();
      if (ok && first) {
        const missed = minutesMissed(sink.of(fo.sys), fired.scheduled + MINUTE, first.scheduled);
        samples.push({ lateness_ms: round(first.arrived - first.scheduled, 1)!, gap_ms: round(first.arrived - killedAt, 1)!, missed });
        log(`${fo.sys}: kill ${samples.length}: ${fired.machine} killed; ${first.machine} delivered ${new Date(first.scheduled).toISOString().slice(11, 19)} ${(first.arrived - first.scheduled).toFixed(0)} ms late, ${((first.arrived - killedAt) / 1000).toFixed(1)} s after the kill`);
        lastScheduled = first.scheduled - 1; // the survivor that fired it is the next victim
      }
      const again = spawn(fo, fired.machine);
      fo.workers[victim] = again;
      await again.ready().catch((error) => log(`${fo.sys}: restarting ${fired.machine}: ${(error as Error).message.split("\n")[0]}`));
      if (!first) return;
    }
  })();

  let finished: Promise<{ lateness: LatenessResult[]; failover: FailoverResult | null }> | null = null;
  const finish = async () => {
      const counted = () => Math.max(0, Math.floor((Date.now() - SETTLE_MS - from) / MINUTE) + 1);
      const enough = () => (!want.lateness || counted() >= plan.minuteInstants) && (!fo || samples.length >= plan.minuteKills);
      if (!enough()) {
        log(`pg-boss every-minute rows: waiting for ${want.lateness ? `${plan.minuteInstants} instants (${counted()} so far)` : ""}${fo ? ` ${plan.minuteKills} kill(s) (${samples.length} so far)` : ""}`);
        await waitFor(enough, (plan.minuteInstants + plan.minuteKills + 1) * MINUTE + SETTLE_MS, 500);
      }
      const to = from + counted() * MINUTE; // instants in [from, to) have had SETTLE_MS to arrive
      const seconds = (Date.now() - from) / 1000;
      stopping = true;
      await failoverLoop;
      const lateness: LatenessResult[] = rows
        .filter((r) => !r.sys.startsWith("pb-fo"))
        .map((r) => {
          const cpu1 = pids(r).map((p) => cpuSeconds(p) ?? 0);
          const cpu = r.cpu0 ? (cpu1.reduce((s, v) => s + v, 0) - r.cpu0.reduce((s, v) => s + v, 0)) / seconds : null;
          return summarizeMinutes(sink.of(r.sys), from, to, r.label, r.n, `${r.settings}; every-minute job (pg-boss cron has minute precision)`, machineIds(r), cpu);
        });
      let failover: FailoverResult | null = null;
      if (fo) {
        const all = sink.of(fo.sys).filter((a) => a.scheduled >= from);
        failover = {
          system: "pg-boss (tight)",
          settings: `${PGBOSS_TIGHT_LABEL}; every-minute job, 3 workers`,
          ...killFigures(samples),
          duplicates: all.length - new Set(all.map((a) => a.key)).size,
          per_agent: perAgent(all, machineIds(fo)).text,
          note: "minute precision: the first occurrence after the kill is the next minute's, so kill → delivery is mostly the wait for that minute; its lateness is the failover cost",
        };
      }
      await Promise.all(rows.flatMap((r) => r.workers.map((w) => w.kill())));
      for (const r of rows) dropPgbossSchema(r.schema);
      return { lateness, failover };
  };
  const track: MinuteTrack = { finish: () => (finished ??= finish()) };
  // Quick: stop as soon as the plan's minutes and kills are in, so these workers do not share the
  // cores with the scenarios after that any longer than needed; a full run keeps them to the end.
  if (plan.quick) {
    const counted = () => Math.floor((Date.now() - SETTLE_MS - from) / MINUTE) + 1;
    void waitFor(() => finished !== null || ((!want.lateness || counted() >= plan.minuteInstants) && (!fo || samples.length >= plan.minuteKills)), 30 * MINUTE, 1000).then(() => {
      if (!finished) log("pg-boss every-minute rows: measured what the quick plan asks; stopping their workers");
      void track.finish().catch(() => {});
    });
  }
  return track;
}

/** Whole minutes in [from, to) with no arrival. */
function minutesMissed(arrivals: Arrival[], from: number, to: number): number {
  const got = new Set(arrivals.map((a) => a.scheduled));
  let missed = 0;
  for (let t = from; t < to; t += MINUTE) if (!got.has(t)) missed++;
  return missed;
}

export function summarizeMinutes(arrivals: Arrival[], from: number, to: number, system: string, agents: number, settings: string, machineIds: string[], cpu: number | null): LatenessResult {
  const inWindow = arrivals.filter((a) => a.scheduled >= from && a.scheduled < to);
  const firsts = new Map<number, number>();
  for (const a of inWindow) if (!firsts.has(a.scheduled)) firsts.set(a.scheduled, a.arrived - a.scheduled);
  const late = [...firsts.values()];
  const byMachine: Record<string, number> = {};
  for (const a of inWindow) byMachine[a.machine] = (byMachine[a.machine] ?? 0) + 1;
  const due = Math.round((to - from) / MINUTE);
  return {
    system,
    store: "PostgreSQL",
    agents,
    settings,
    due,
    ...latenessFigures(late),
    missed: due - firsts.size,
    duplicates: inWindow.length - firsts.size,
    by_machine: byMachine,
    ...(agents > 1 ? { per_agent: perAgent(inWindow, machineIds).text } : {}),
    cpu_pct: cpu === null ? null : round(cpu * 100, 2),
    precision: "minute",
  };
}
