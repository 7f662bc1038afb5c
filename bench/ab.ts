/**
 * Two FleetCron checkouts side by side, for a change to the hot path: the same lateness window
 * (one job due every second, one agent each on FerretDB and on SQLite) and the same FerretDB burst,
 * run for both in the same run, so machine noise hits both alike.
 *
 *   bun bench/ab.ts /path/to/base/src/main.ts /path/to/changed/src/main.ts [--lateness-sec 60] [--burst 300]
 *
 * (`git worktree add /tmp/base HEAD` gives a base checkout; link node_modules into it.)
 */
import { rmSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startFerret } from "./lib/ferret.ts";
import { dropDb, Fleet, insertJobs, type StoreSpec } from "./lib/fleetcron.ts";
import { startSink } from "./lib/sink.ts";
import { cpuSeconds, loadavg, log, nextSecond, percentile, round, sleep, waitFor } from "./lib/util.ts";

const args = process.argv.slice(2);
const value = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const [baseMain, changedMain] = args.filter((a) => !a.startsWith("--") && !/^\d+$/.test(a)).map((p) => resolve(p));
if (!baseMain || !changedMain) throw new Error("usage: bun bench/ab.ts BASE_MAIN CHANGED_MAIN [--lateness-sec N] [--burst N]");
const latenessSec = value("lateness-sec", 60);
const burstN = value("burst", 300);
const variants = [
  { label: "base", main: baseMain },
  { label: "changed", main: changedMain },
];

const tmp = mkdtempSync(join(tmpdir(), "fleetcron-ab-"));
const sink = startSink();
const ferret = await startFerret("ab");
log(`A/B: ${baseMain} vs ${changedMain}; load ${loadavg()}`);
const out: Record<string, unknown>[] = [];
try {
  // Lateness, both variants on both stores at once.
  const fleets = variants.flatMap((v) => [
    { v, store: "sqlite", fleet: new Fleet(`ab-${v.label}-sqlite`, { kind: "sqlite", path: join(tmp, `${v.label}.db`) }, 1, {}, {}, v.main) },
    { v, store: "ferretdb", fleet: new Fleet(`ab-${v.label}-ferretdb`, { kind: "mongo", uri: ferret.uri, db: `ab_${v.label}` }, 1, {}, {}, v.main) },
  ]);
  await Promise.all(fleets.map((f) => f.fleet.up()));
  await Promise.all(fleets.map((f) => f.fleet.apply([{ name: "tick", every: "1s", url: `${sink.url}/tick?sys=${f.fleet.name}&m={{machine_id}}` }])));
  await waitFor(() => fleets.every((f) => sink.count(f.fleet.name) >= 2), 20_000);
  const from = nextSecond(500);
  const to = from + latenessSec * 1000;
  await sleep(to - Date.now() + 2000);
  for (const f of fleets) {
    const late = sink.of(f.fleet.name).filter((a) => a.scheduled >= from && a.scheduled < to).map((a) => a.arrived - a.scheduled);
    out.push({ measure: "lateness", variant: f.v.label, store: f.store, n: late.length, p50_ms: percentile(late, 50), p99_ms: percentile(late, 99), max_ms: late.length ? Math.max(...late) : null });
  }
  await Promise.all(fleets.map((f) => f.fleet.down()));
  fleets.forEach((f) => f.fleet.cleanup());

  // Burst on FerretDB, one variant after the other (a burst takes the machine).
  for (const v of variants) {
    const store: StoreSpec = { kind: "mongo", uri: ferret.uri, db: `ab_burst_${v.label}` };
    const sys = `ab-burst-${v.label}`;
    const at = nextSecond(6000 + burstN * 2);
    const d = new Date(at);
    await insertJobs(store, Array.from({ length: burstN }, (_, i) => ({ name: `b${i}`, enabled: true, cron: `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} * * *`, tz: "UTC", url: `${sink.url}/b?sys=${sys}` })));
    const fleet = new Fleet(sys, store, 1, {}, {}, v.main);
    await fleet.up();
    await sleep(at - Date.now() - 50);
    const cpu0 = cpuSeconds(fleet.agents[0]!.pid) ?? 0;
    const fcpu0 = cpuSeconds(ferret.pid) ?? 0;
    const ops0 = await ferret.requests();
    await waitFor(() => new Set(sink.of(sys).map((a) => a.key)).size >= burstN, 600_000, 100);
    const last = Math.max(...sink.of(sys).map((a) => a.arrived));
    const ops1 = await ferret.requests();
    let ops = 0;
    for (const [k, n] of ops1) ops += n - (ops0.get(k) ?? 0);
    out.push({
      measure: `burst ${burstN} (FerretDB)`,
      variant: v.label,
      store: "ferretdb",
      all_delivered_s: round((last - at) / 1000, 2),
      per_s: round(burstN / ((last - at) / 1000), 1),
      agent_cpu_s: round((cpuSeconds(fleet.agents[0]!.pid) ?? 0) - cpu0, 2),
      ferretdb_cpu_s: round((cpuSeconds(ferret.pid) ?? 0) - fcpu0, 2),
      requests_per_occurrence: round(ops / burstN, 2),
    });
    await fleet.down();
    fleet.cleanup();
    await dropDb(ferret.uri, store.db);
  }
} finally {
  await sink.stop();
  await ferret.stop();
  rmSync(tmp, { recursive: true, force: true });
}
console.table(out);
log(`load at end ${loadavg()}`);
process.exit(0);
