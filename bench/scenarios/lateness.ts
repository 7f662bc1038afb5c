import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Context } from "../lib/context.ts";
import { dropDb, Fleet } from "../lib/fleetcron.ts";
import { bullmqPrefix, dropBullmqPrefix, REDIS_URL, setupBullmq } from "../lib/bullmq.ts";
import { BULLMQ_DEFAULT_LABEL } from "../lib/bullmq-settings.ts";
import { AGENDA_DEFAULT, AGENDA_TIGHT, startAgenda, startBullmq, startCroner, type PeerProcess } from "../lib/peers.ts";
import { perAgent } from "../lib/sink.ts";
import { ferretKinds, freshStore, STORE_LABEL } from "../lib/stores.ts";
import { cpuSeconds, log, nextSecond, percentile, round, sleep, waitFor } from "../lib/util.ts";

/**
 * Lateness, every system side by side in one window: one job due every second on each, arrival at
 * the sink minus the scheduled instant. All systems wake on the same second, so they also compete
 * for the same cores at the same moment; that is part of what is measured, and the same for all.
 */
/** How late the first arrival of each occurrence was: the figures of every lateness row. */
export function latenessFigures(late: number[]): Pick<LatenessResult, "n" | "p50_ms" | "p99_ms" | "max_ms" | "min_ms"> {
  return {
    n: late.length,
    p50_ms: round(percentile(late, 50), 1),
    p99_ms: round(percentile(late, 99), 1),
    max_ms: round(late.length ? Math.max(...late) : null, 1),
    min_ms: round(late.length ? Math.min(...late) : null, 1),
  };
}

export interface LatenessResult {
  system: string;
  store: string;
  agents: number;
  settings: string;
  /** Occurrences due in the window (one per second). */
  due: number;
  /** Occurrences that arrived (distinct). */
  n: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  min_ms: number | null;
  missed: number;
  duplicates: number;
  /** Which machine sent them. */
  by_machine: Record<string, number>;
  /** Deliveries per agent in agent order (`25/0/0`), multi-agent FleetCron rows only. */
  per_agent?: string;
  /** CPU % of one core, summed over the system's processes, during the window. */
  cpu_pct: number | null;
  /** "minute": an every-minute job over its own window (pg-boss, whose cron has minute precision). */
  precision?: "minute";
}

export async function lateness(ctx: Context): Promise<LatenessResult[]> {
  const { sink, ferret } = ctx;
  const sqlitePath = join(ctx.tmp, "lateness.db");
  // FleetCron on SQLite, and with 1 and 3 agents on each FerretDB handler (the same code: the
  // FerretDB-sqlite / FerretDB-pg difference is FerretDB's backend).
  const fleets = [
    { fleet: new Fleet("lat-sqlite-1", { kind: "sqlite", path: sqlitePath }, 1), store: STORE_LABEL.sqlite, settings: "defaults" },
    ...ferretKinds(ctx).flatMap((kind) =>
      [1, 3].map((n) => ({ fleet: new Fleet(`lat-${kind}-${n}`, freshStore(ctx, kind, `lat_${kind}_${n}`), n), store: STORE_LABEL[kind], settings: "defaults" })),
    ),
  ];
  const agendaDb = { default: ctx.db("lat_agenda_default"), tight: ctx.db("lat_agenda_tight"), fast: ctx.db("lat_agenda_fast") };
  const peers: { sys: string; label: string; store: string; settings: string; procs: PeerProcess[] }[] = [];
  const bullmqPrefixes: string[] = [];
  try {
    await Promise.all(fleets.map(({ fleet }) => fleet.up()));
    await Promise.all(fleets.map(({ fleet }) => fleet.apply([{ name: "tick", every: "1s", url: `${sink.url}/tick?sys=${fleet.name}&m={{machine_id}}` }])));
    // Agenda runs a due job at its next scan, so processEvery bounds its lateness; 100 ms is the
    // fastest scan that one recurring job tolerates (with many jobs its overlapping scans pile up).
    const agendaVariants = [
      { key: "default", label: "Agenda (default)", opts: AGENDA_DEFAULT, settings: "processEvery 5 s" },
      { key: "tight", label: "Agenda (tight)", opts: AGENDA_TIGHT, settings: `processEvery ${AGENDA_TIGHT.processEvery / 1000} s, concurrency 50` },
      { key: "fast", label: "Agenda (100 ms)", opts: { ...AGENDA_TIGHT, processEvery: 100 }, settings: "processEvery 100 ms, concurrency 50" },
    ] as const;
    for (const v of agendaVariants) {
      const sys = `lat-agenda-${v.key}`;
      peers.push({
        sys,
        label: v.label,
        store: "FerretDB",
        settings: v.settings,
        procs: [startAgenda({ uri: ferret.uri, db: agendaDb[v.key], name: `${sys}-a`, sink: sink.url, sys, ...v.opts, recurring: "* * * * * *" })],
      });
    }
    peers.push({ sys: "croner", label: "croner (timer floor)", store: "none", settings: "bare process", procs: [startCroner(sink.url)] });
    // BullMQ: one job scheduler with the same 6-field cron, on 1 worker and on 3. Its defaults: the
    // tight settings (bench/lib/bullmq-settings.ts) change concurrency and stalled-job recovery, not
    // when a scheduler's delayed job comes up.
    if (!ctx.peerNotes.bullmq) {
      for (const n of [1, 3]) {
        const sys = `lat-bullmq-${n}`;
        const prefix = bullmqPrefix(sys);
        bullmqPrefixes.push(prefix);
        await setupBullmq(prefix, "tick", [{ id: "tick", pattern: "* * * * * *" }]);
        const procs = Array.from({ length: n }, (_, i) => startBullmq({ redis: REDIS_URL, prefix, name: `${sys}-${"abc"[i]}`, sink: sink.url, sys, queue: "tick", tight: false }));
        peers.push({ sys, label: "BullMQ (default)", store: "Redis", settings: BULLMQ_DEFAULT_LABEL, procs });
      }
    }
    await Promise.all(peers.flatMap((p) => p.procs.map((proc) => proc.ready())));

    // Warm-up: every system has fired (FleetCron agents pick the job up within one heartbeat).
    const systems = [...fleets.map((f) => f.fleet.name), ...peers.map((p) => p.sys)];
    const warm = await waitFor(() => systems.every((s) => sink.count(s) >= 2), 30_000, 200);
    if (!warm) log(`lateness: not every system fired during warm-up: ${systems.map((s) => `${s}=${sink.count(s)}`).join(", ")}`);
    const from = nextSecond(500);
    const to = from + ctx.plan.latenessSec * 1000;
    const pids = (sys: string) => {
      const f = fleets.find((x) => x.fleet.name === sys);
      return f ? f.fleet.agents.map((a) => a.pid) : peers.find((p) => p.sys === sys)!.procs.map((p) => p.proc.pid);
    };
    await sleep(from - Date.now());
    const cpu0 = new Map(systems.map((s) => [s, pids(s).map(cpuSeconds)]));
    log(`lateness: window of ${ctx.plan.latenessSec} s from ${new Date(from).toISOString()} (${systems.length} systems side by side)`);
    await sleep(to - Date.now());
    const cpu1 = new Map(systems.map((s) => [s, pids(s).map(cpuSeconds)]));
    await sleep(6000); // Agenda's default may deliver up to processEvery late
    const windowSec = (to - from) / 1000;

    const summarize = (sys: string, system: string, store: string, agents: number, settings: string, machineIds?: string[]): LatenessResult => {
      const inWindow = sink.of(sys).filter((a) => a.scheduled >= from && a.scheduled < to);
      const byKey = new Map<number, number>();
      for (const a of inWindow) byKey.set(a.scheduled, (byKey.get(a.scheduled) ?? 0) + 1);
      // First arrival per occurrence; a duplicate is counted, not measured.
      const firsts = new Map<number, number>();
      for (const a of inWindow) if (!firsts.has(a.scheduled)) firsts.set(a.scheduled, a.arrived - a.scheduled);
      const late = [...firsts.values()];
      const byMachine: Record<string, number> = {};
      for (const a of inWindow) byMachine[a.machine] = (byMachine[a.machine] ?? 0) + 1;
      const c0 = cpu0.get(sys)!;
      const c1 = cpu1.get(sys)!;
      const cpu = c0.every((v) => v !== null) && c1.every((v) => v !== null) ? (c1.reduce((s, v) => s + v!, 0) - c0.reduce((s, v) => s + v!, 0)) / windowSec : null;
      return {
        system,
        store,
        agents,
        settings,
        due: windowSec,
        ...latenessFigures(late),
        missed: windowSec - byKey.size,
        duplicates: inWindow.length - byKey.size,
        by_machine: byMachine,
        ...(agents > 1 && machineIds ? { per_agent: perAgent(inWindow, machineIds).text } : {}),
        cpu_pct: cpu === null ? null : round(cpu * 100, 2),
      };
    };
    return [
      ...fleets.map(({ fleet, store, settings }) => summarize(fleet.name, "FleetCron", store, fleet.agents.length, settings, fleet.machineIds)),
      ...peers.map((p) => summarize(p.sys, p.label, p.store, p.procs.length, p.settings, p.procs.map((proc) => proc.name))),
    ];
  } finally {
    await Promise.all([...fleets.map(({ fleet }) => fleet.down()), ...peers.flatMap((p) => p.procs.map((proc) => proc.kill()))]);
    for (const prefix of bullmqPrefixes) dropBullmqPrefix(prefix);
    for (const { fleet } of fleets) fleet.cleanup();
    for (const suffix of ["", "-wal", "-shm"]) rmSync(sqlitePath + suffix, { force: true });
    for (const { fleet } of fleets) if (fleet.store.kind === "mongo") await dropDb(fleet.store.uri, fleet.store.db);
    for (const db of Object.values(agendaDb)) await dropDb(ferret.uri, db);
  }
}
