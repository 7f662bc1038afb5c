import { listJobSummaries, type JobSummary } from "../control/jobs.ts";
import { machineSummaries, type MachineSummary } from "../control/machines.ts";
import { fleetPlacement } from "../control/owners.ts";
import { displayTime } from "../schedule/display.ts";
import type { RunRecord, RunStatus, StepRecord, Store } from "../store/types.ts";

/**
 * The facts `fleetcron status` prints and the status page shows, gathered in one place so the two
 * never disagree. Everything here comes from the store; run records are already redacted.
 */

export const FAILED: readonly RunStatus[] = ["error", "lost", "missed"];

export interface StatusOptions {
  now: number;
  deadAfterMs: number;
  defaultTz: string;
  secretKeys: string[];
  /** This host's machine id (config, or `$FLEETCRON_HOME/machine-id`), when known. */
  thisMachine: string | null;
  /** How many failed runs (error, lost, missed) to list. */
  failures?: number;
  /** How many recent runs of any status to list (0: none, as `status` in the terminal). */
  recentRuns?: number;
}

export interface JobView extends JobSummary {
  /** `next_fire` in the job's zone, e.g. `2026-01-05 21:00:00 KST (+09:00)`. */
  next_fire_local: string | null;
  /** The last run failed (error, lost, missed): the job needs attention. */
  failing: boolean;
}

export interface RunView {
  id: string;
  run_id: string;
  job: string;
  job_id: string;
  scheduled_for: string;
  status: RunStatus;
  attempt: number;
  trigger: RunRecord["trigger"];
  machine_id: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  /** started_at - scheduled_for. */
  lateness_ms: number | null;
  /** The error, else the reason: what `status` has always printed. */
  error: string | null;
  reason: string | null;
  steps: StepRecord[];
}

export interface StatusData {
  generated_at: string;
  store: { kind: Store["kind"]; location: string; reachable: true };
  this_machine: { machine_id: string | null; agent: MachineSummary | null };
  fleet: { alive: number; primary: string | null; machines: MachineSummary[] };
  jobs: { total: number; enabled: number; invalid: { name: string; problems: JobSummary["problems"] }[]; list: JobView[] };
  due_next: { name: string; next_fire: string; next_fire_local: string; tz: string; owner: string | null }[];
  recent_failures: RunView[];
  recent_runs: RunView[];
}

export function runView(r: RunRecord): RunView {
  return {
    id: r._id,
    run_id: r.run_id,
    job: r.job_name,
    job_id: r.job_id,
    scheduled_for: r.scheduled_for.toISOString(),
    status: r.status,
    attempt: r.attempt,
    trigger: r.trigger,
    machine_id: r.machine_id ?? null,
    started_at: r.started_at?.toISOString() ?? null,
    finished_at: r.finished_at?.toISOString() ?? null,
    duration_ms: r.duration_ms ?? null,
    lateness_ms: r.started_at ? r.started_at.getTime() - r.scheduled_for.getTime() : null,
    error: r.error ?? r.reason ?? null,
    reason: r.reason ?? null,
    steps: r.steps ?? [],
  };
}

function localOf(iso: string | null, tz: string): string | null {
  if (iso === null) return null;
  try {
    return displayTime(Date.parse(iso), tz);
  } catch {
    return null; // an invalid job's unknown zone
  }
}

/** Newest first, by instant then record id (attempts of one occurrence together). */
function newestFirst(a: RunRecord, b: RunRecord): number {
  return b.scheduled_for.getTime() - a.scheduled_for.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0);
}

export async function gatherStatus(store: Store, opts: StatusOptions): Promise<StatusData> {
  const { now } = opts;
  const failures = opts.failures ?? 5;
  const recent = opts.recentRuns ?? 0;
  const fleet = fleetPlacement(await store.listMachines(), now, opts.deadAfterMs, "spread");
  const [machines, summaries, failedLists, recentRuns] = await Promise.all([
    machineSummaries(store, now, opts.deadAfterMs),
    listJobSummaries(store, opts.secretKeys, opts.defaultTz, now, fleet),
    Promise.all(FAILED.map((status) => store.listRuns({ status, limit: failures }))),
    recent > 0 ? store.listRuns({ limit: recent }) : Promise.resolve([]),
  ]);
  const self = machines.find((m) => m.machine_id === opts.thisMachine) ?? null;
  const list: JobView[] = summaries.map((j) => ({
    ...j,
    next_fire_local: localOf(j.next_fire, j.tz),
    failing: j.last_run !== null && FAILED.includes(j.last_run.status),
  }));
  const invalid = list.filter((j) => !j.valid);
  const dueNext = list
    .filter((j) => j.next_fire)
    .sort((a, b) => a.next_fire!.localeCompare(b.next_fire!))
    .slice(0, 5);
  const alive = machines.filter((m) => m.alive);
  return {
    generated_at: new Date(now).toISOString(),
    store: { kind: store.kind, location: store.location, reachable: true },
    this_machine: { machine_id: opts.thisMachine, agent: self },
    fleet: { alive: alive.length, primary: alive.find((m) => m.serial !== null)?.machine_id ?? null, machines },
    jobs: { total: list.length, enabled: list.filter((j) => j.enabled && j.valid).length, invalid: invalid.map((j) => ({ name: j.name, problems: j.problems })), list },
    due_next: dueNext.map((j) => ({ name: j.name, next_fire: j.next_fire!, next_fire_local: j.next_fire_local ?? j.next_fire!, tz: j.tz, owner: j.owner })),
    recent_failures: failedLists.flat().sort(newestFirst).slice(0, failures).map(runView),
    recent_runs: recentRuns.map(runView),
  };
}
