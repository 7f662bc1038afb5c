import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Context } from "../lib/context.ts";
import { ferretQuiet, storeCpu, storeCpuDelta } from "../lib/ferret.ts";
import { dropDb, Fleet, insertJobs, launch, type StoreSpec } from "../lib/fleetcron.ts";
import { perAgent } from "../lib/sink.ts";
import { ensureFerret, ferretKinds, ferretOf, freshStore, STORE_LABEL, type StoreKind } from "../lib/stores.ts";
import { cpuSeconds, log, nextSecond, percentile, round, sleep, waitFor } from "../lib/util.ts";
import { byCommand, DRIVER_COMMANDS, startWireProxy, type WireEvent, type WireProxy } from "../lib/wire-proxy.ts";

/**
 * Fleet load: J jobs due every second on 3 agents (defaults), for a window, on each store. What the
 * fleet costs per occurrence and who does the work:
 *   - delivered / expected occurrences (J × window), lateness p50/p99 of each occurrence's first
 *     arrival, duplicates, misses (due in the window, not arrived by its end + a tail);
 *   - deliveries per agent (a/b/c);
 *   - store requests per occurrence: everything the store served in the window (the agents'
 *     heartbeats and the driver's monitoring included) over the expected occurrences. On FerretDB
 *     from its own `ferretdb_client_requests_total` counters; on SQLite the statements the agents
 *     executed (bench/lib/count-sqlite.ts, preloaded);
 *   - store requests on the critical path: per occurrence, the requests its firing agent sent
 *     between the scheduled instant and the occurrence's arrival at the sink (median / max over the
 *     occurrences; driver housekeeping left out). Each FerretDB agent talks through a counting
 *     proxy of its own (bench/lib/wire-proxy.ts); SQLite agents trace their statements.
 * One job per case (a) runs on every store at once, side by side; 50 jobs (b) load the machine, so
 * each store runs alone.
 */
export interface FleetLoadResult {
  jobs: number;
  store: StoreKind;
  agents: number;
  window_s: number;
  expected: number;
  delivered: number;
  missed: number;
  duplicates: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  per_agent: string;
  /** Store requests in the window / expected occurrences, and the same by command. */
  requests_per_occurrence: number | null;
  /** The same over the occurrences that arrived (differs when some did not). */
  requests_per_delivered?: number | null;
  requests_by_command?: Record<string, number>;
  requests_how: string;
  /** Requests (or statements) of the firing agent between an occurrence's instant and its arrival. */
  critical_path: { median: number | null; p90: number | null; max: number | null; n: number } | null;
  /**
   * The same up to the first request an agent sent for an instant, per (agent, instant): the round
   * trips before anything leaves. Later requests of one instant may also count final writes of
   * earlier ones, which `critical_path` does not tell apart.
   */
  critical_path_first?: { median: number | null; p90: number | null; max: number | null; n: number } | null;
  /** Requests per occurrence per agent, through its proxy / trace (housekeeping included). */
  requests_per_agent?: string;
  agent_cpu_pct: number | null;
  store_cpu_pct?: number | null;
  /** Run side by side with the other stores (one job), or alone (many). */
  side_by_side: boolean;
  note?: string;
}

interface Case {
  kind: StoreKind;
  sys: string;
  store: StoreSpec;
  fleet: Fleet;
  proxies: WireProxy[];
  traceFiles: string[];
  counterFiles: string[];
  /** Its FerretDB stopped answering: nothing to drop there (it is replaced, its PostgreSQL database dropped). */
  silent?: boolean;
}

const AGENTS = 3;

function readTrace(file: string): WireEvent[] {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [t, verb] = line.split(" ");
        return { t: Number(t), command: verb ?? "?" };
      });
  } catch {
    return [];
  }
}

function readCounter(file: string): { total: number; byVerb: Record<string, number> } | null {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

async function setUp(ctx: Context, kind: StoreKind, jobs: number): Promise<Case> {
  const sys = `load-${kind}-${jobs}`;
  const ferret = ferretOf(ctx, kind);
  const store = freshStore(ctx, kind, kind === "sqlite" ? sys : `load_${kind}_${jobs}`);
  const url = `${ctx.sink.url}/load?sys=${sys}&m={{machine_id}}`;
  await insertJobs(store, Array.from({ length: jobs }, (_, i) => ({ name: `load-${i}`, enabled: true, cron: "* * * * * *", tz: "UTC", method: "GET", url })));
  const proxies: WireProxy[] = [];
  const traceFiles: string[] = [];
  const counterFiles: string[] = [];
  let fleet: Fleet;
  if (ferret && store.kind === "mongo") {
    const port = Number(new URL(ferret.uri).port);
    for (let i = 0; i < AGENTS; i++) proxies.push(await startWireProxy(port));
    fleet = new Fleet(sys, store, AGENTS, {}, {}, undefined, (i) => ({ kind: "mongo", uri: proxies[i]!.uri, db: store.db }));
  } else {
    for (let i = 0; i < AGENTS; i++) {
      traceFiles.push(join(ctx.tmp, `${sys}-${i}.trace`));
      counterFiles.push(join(ctx.tmp, `${sys}-${i}.count.json`));
    }
    fleet = new Fleet(sys, store, AGENTS, {}, (i) => ({ BENCH_SQLITE_TRACE_FILE: traceFiles[i]!, BENCH_SQLITE_COUNT_FILE: counterFiles[i]! }));
  }
  return { kind, sys, store, fleet, proxies, traceFiles, counterFiles };
}

async function tearDown(ctx: Context, c: Case): Promise<void> {
  // SIGTERM first: agents close their connections (killed mid-request, FerretDB-pg has been seen to wedge).
  await c.fleet.stop(2000);
  c.fleet.cleanup();
  for (const p of c.proxies) await p.stop();
  ctx.sink.clear(c.sys);
  if (c.store.kind === "sqlite") for (const suffix of ["", "-wal", "-shm"]) rmSync(c.store.path + suffix, { force: true });
  else if (!c.silent) await dropDb(ferretOf(ctx, c.kind)!.uri, c.store.db);
  for (const f of [...c.traceFiles, ...c.counterFiles]) rmSync(f, { force: true });
}

/** Runs the cases of one job count at once, over one window. */
async function runCases(ctx: Context, jobs: number, kinds: StoreKind[]): Promise<FleetLoadResult[]> {
  const sec = ctx.plan.fleetLoadSec;
  const TAIL_MS = ctx.plan.quick ? 3000 : 5000;
  const counting = !launch.bin; // the SQLite statement counter is a bun preload
  const preload = counting ? ["--preload", resolve(import.meta.dir, "../lib/count-sqlite.ts")] : [];
  await Promise.all(
    kinds.map(async (kind) => {
      await ensureFerret(ctx, kind);
      const ferret = ferretOf(ctx, kind);
      if (ferret && !(await ferretQuiet(ferret, 30_000))) log(`fleet load: ${STORE_LABEL[kind]} still busy; going on`);
    }),
  );
  const cases: Case[] = [];
  try {
    for (const kind of kinds) cases.push(await setUp(ctx, kind, jobs));
    // The agents of a fleet start 150 ms apart, not one after another: who ranks first does not matter here.
    await Promise.all(cases.flatMap((c) => c.fleet.agents.map((a, i) => sleep(i * 150).then(() => a.up(60_000, c.kind === "sqlite" ? preload : [])))));
    // Warm-up: every agent has loaded the jobs and the fleet has fired them once (at most 10 s).
    const warm = await waitFor(() => cases.every((c) => ctx.sink.count(c.sys) >= jobs), 10_000, 100);
    if (!warm) log(`fleet load ${jobs}: not every fleet fired during warm-up: ${cases.map((c) => `${c.sys}=${ctx.sink.count(c.sys)}`).join(", ")}`);
    // FerretDB and, on FerretDB-pg, the PostgreSQL backends serving it (listed now: psql blocks ~30 ms).
    const storePids = cases.map((c) => ferretOf(ctx, c.kind)?.storePids() ?? []);
    const from = nextSecond(300);
    const to = from + sec * 1000;
    await sleep(from - Date.now() - 150);
    const pids = (c: Case) => c.fleet.agents.map((a) => a.pid);
    const cpu0 = cases.map((c) => pids(c).map(cpuSeconds));
    const storeCpu0 = storePids.map((p) => (p.length ? storeCpu(p) : null));
    const ops0 = await Promise.all(cases.map((c) => ferretOf(ctx, c.kind)?.requests() ?? null));
    log(`fleet load: ${jobs} every-second job${jobs > 1 ? "s" : ""} on ${AGENTS} agents, ${sec} s from ${new Date(from).toISOString()} on ${cases.map((c) => STORE_LABEL[c.kind]).join(", ")}`);
    await sleep(to - Date.now() - 150);
    const ops1 = await Promise.all(cases.map((c) => ferretOf(ctx, c.kind)?.requests() ?? null));
    const cpu1 = cases.map((c) => pids(c).map(cpuSeconds));
    const storeCpu1 = storePids.map((p) => (p.length ? storeCpu(p) : null));
    await sleep(to + TAIL_MS - Date.now());
    // Backends FerretDB opened during the window count whole (their CPU at the window's end is unknown).
    cases.forEach((c, i) => {
      const extra = (ferretOf(ctx, c.kind)?.storePids() ?? []).filter((p) => !storePids[i]!.includes(p));
      for (const [pid, s] of storeCpu(extra)) storeCpu1[i]?.set(pid, s);
    });
    await sleep(300); // the statement traces are flushed four times a second
    const silent = await Promise.all(cases.map(async (c) => (c.silent = !((await ferretOf(ctx, c.kind)?.answers(3000)) ?? true))));

    return cases.map((c, ci): FleetLoadResult => {
      const expected = jobs * sec;
      const arrivals = ctx.sink.of(c.sys).filter((a) => a.scheduled >= from && a.scheduled < to && a.arrived <= to + TAIL_MS);
      const first = new Map<string, (typeof arrivals)[number]>();
      for (const a of arrivals) if (!first.has(a.key)) first.set(a.key, a);
      const late = [...first.values()].map((a) => a.arrived - a.scheduled);
      // Requests by agent over the window, and on each occurrence's critical path.
      const eventsOf = c.proxies.length ? c.proxies.map((p) => p.events) : c.traceFiles.map(readTrace);
      const inWindow = eventsOf.map((events) => events.filter((e) => e.t >= from && e.t < to));
      const critical: number[] = [];
      const firstOfInstant = new Map<string, number>(); // `${agent}@${instant}` → its earliest arrival
      const before = (i: number, from: number, until: number) => eventsOf[i]!.filter((e) => e.t >= from && e.t <= until && !DRIVER_COMMANDS.has(e.command)).length;
      for (const a of first.values()) {
        const i = c.fleet.machineIds.indexOf(a.machine);
        if (i < 0) continue;
        critical.push(before(i, a.scheduled, a.arrived));
        const k = `${i}@${a.scheduled}`;
        firstOfInstant.set(k, Math.min(firstOfInstant.get(k) ?? Infinity, a.arrived));
      }
      const criticalFirst = [...firstOfInstant].map(([k, arrived]) => {
        const [i, at] = k.split("@").map(Number);
        return before(i!, at!, arrived);
      });
      const stats = (xs: number[]) => ({ median: percentile(xs, 50), p90: percentile(xs, 90), max: xs.length ? Math.max(...xs) : null, n: xs.length });
      let total: number | null = null;
      let byCmd: Record<string, number> = {};
      let how: string;
      if (ops0[ci] && ops1[ci]) {
        total = 0;
        for (const [command, n] of ops1[ci]!) {
          const d = n - (ops0[ci]!.get(command) ?? 0);
          if (d > 0) (byCmd[command] = d), (total += d);
        }
        how = `FerretDB (${ferretOf(ctx, c.kind)!.handler} handler) ferretdb_client_requests_total over the window`;
      } else {
        // SQLite: the traced statements of the window (the counter files agree up to their last flush).
        total = counting ? inWindow.reduce((s, e) => s + e.length, 0) : null;
        byCmd = byCommand(inWindow.flat());
        how = counting ? "SQLite statements the 3 agents executed in the window (bun:sqlite wrapper, preloaded)" : "not counted (agents are a compiled binary)";
      }
      const per = (n: number) => round(n / expected, 2)!;
      const cpuSum = (xs: (number | null)[]) => (xs.every((x) => x !== null) ? xs.reduce((s, x) => s + x!, 0) : null);
      const a0 = cpuSum(cpu0[ci]!);
      const a1 = cpuSum(cpu1[ci]!);
      const s0 = storeCpu0[ci] ?? null;
      const s1 = storeCpu1[ci] ?? null;
      const storeCpuS = s0 && s1 ? storeCpuDelta(s0, s1) : null;
      const missed = expected - first.size;
      return {
        jobs,
        store: c.kind,
        agents: AGENTS,
        window_s: sec,
        expected,
        delivered: first.size,
        missed,
        duplicates: arrivals.length - first.size,
        p50_ms: round(percentile(late, 50), 1),
        p99_ms: round(percentile(late, 99), 1),
        max_ms: round(late.length ? Math.max(...late) : null, 1),
        per_agent: perAgent(arrivals, c.fleet.machineIds).text,
        requests_per_occurrence: total === null ? null : per(total),
        requests_per_delivered: total === null || first.size === 0 ? null : round(total / first.size, 2),
        requests_by_command: Object.fromEntries(Object.entries(byCmd).sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, per(v)])),
        requests_how: how,
        critical_path: critical.length || counting || c.proxies.length ? stats(critical) : null,
        critical_path_first: criticalFirst.length || counting || c.proxies.length ? stats(criticalFirst) : null,
        requests_per_agent: inWindow.map((e) => round(e.length / expected, 2)).join("/"),
        agent_cpu_pct: a0 !== null && a1 !== null ? round(((a1 - a0) / sec) * 100, 1) : null,
        ...(storeCpuS !== null ? { store_cpu_pct: round((storeCpuS / sec) * 100, 1) } : {}),
        side_by_side: cases.length > 1,
        ...(missed > 0 || silent[ci] ? { note: [missed > 0 ? `${missed} of ${expected} not arrived ${TAIL_MS / 1000} s after the window` : "", silent[ci] ? "FerretDB no longer answers a ping" : ""].filter(Boolean).join("; ") } : {}),
      };
    });
  } finally {
    await Promise.all(cases.map((c) => tearDown(ctx, c)));
  }
}

export async function fleetLoad(ctx: Context): Promise<FleetLoadResult[]> {
  const kinds: StoreKind[] = [...ferretKinds(ctx), "sqlite"];
  const out: FleetLoadResult[] = [];
  for (const jobs of ctx.plan.fleetLoadJobs) {
    // A handful of jobs barely loads the machine: all stores in one window. Many: one store at a time.
    const groups = jobs <= 5 ? [kinds] : kinds.map((k) => [k]);
    for (const group of groups) {
      try {
        const rows = await runCases(ctx, jobs, group);
        for (const r of rows) log(`fleet load ${r.jobs} × ${STORE_LABEL[r.store]}: ${r.delivered}/${r.expected}, p99 ${r.p99_ms} ms, ${r.requests_per_occurrence} requests/occurrence, round trips ${r.critical_path_first?.median ?? "—"} (to each request ${r.critical_path?.median ?? "—"}), per agent ${r.per_agent}`);
        out.push(...rows);
      } catch (error) {
        log(`fleet load ${jobs} on ${group.join(", ")}: ${(error as Error).message.split("\n")[0]}`);
        for (const kind of group) {
          out.push({ jobs, store: kind, agents: AGENTS, window_s: ctx.plan.fleetLoadSec, expected: jobs * ctx.plan.fleetLoadSec, delivered: 0, missed: jobs * ctx.plan.fleetLoadSec, duplicates: 0, p50_ms: null, p99_ms: null, max_ms: null, per_agent: "", requests_per_occurrence: null, requests_how: "", critical_path: null, agent_cpu_pct: null, side_by_side: group.length > 1, note: `failed: ${(error as Error).message.split("\n")[0]}` });
        }
      }
    }
  }
  return out;
}
