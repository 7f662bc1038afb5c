import { FleetCronError, EXIT_FAILED } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { parseJobDocument } from "../jobs/schema.ts";
import type { InvalidJob, Job, ValidationProblem } from "../jobs/types.ts";
import { pausedAt, resumesAt } from "../jobs/pause.ts";
import { atInstant, parseAt } from "../schedule/at.ts";
import { describeSchedule, nextFireAfter } from "../schedule/next.ts";
import { displayTime } from "../schedule/display.ts";
import type { JobDocument, RunRecord, Store } from "../store/types.ts";
import { fleetViewOf, secretsMissingHere, type FleetView } from "./fleet-view.ts";
import { notFound } from "./names.ts";
import { osActor, recordAudit, type Actor, type AuditChange } from "./audit.ts";
import { ownerOf, type FleetPlacement } from "./owners.ts";

/**
 * Fields FleetCron itself keeps on a job document; they never count as a change by the user, and
 * a re-applied file keeps them (a paused job stays paused until `jobs resume`).
 */
const BOOKKEEPING = ["_id", "created_at", "updated_at", "paused"] as const;

function userFields(doc: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...doc };
  for (const key of BOOKKEEPING) delete copy[key];
  return copy;
}

function sameDocument(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return canonical(userFields(a)) === canonical(userFields(b));
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

export interface JobChange {
  name: string;
  change: "created" | "updated" | "unchanged" | "deleted";
  /** For "updated": each top-level field that changes, with its value before and after. */
  fields?: { field: string; before: unknown; after: unknown }[];
  /** For "created": a job the file does not name with the same definition (only the name differs). */
  likely_rename_of?: string;
}

interface PlannedWrite {
  change: JobChange;
  /** Does the write; returns how to undo it and what the audit log records of it. */
  write: (at: Date) => Promise<{ undo: () => Promise<unknown>; audit: AuditChange }>;
}

export interface ApplyPlan {
  changes: JobChange[];
  writes: PlannedWrite[];
}

/** Fields that say nothing about what a job does: a job that differs only in these is the same job renamed. */
const IDENTITY = ["name", "description"];

function definitionOf(doc: Record<string, unknown>): string {
  const fields = userFields(doc);
  for (const key of IDENTITY) delete fields[key];
  return canonical(fields);
}

function fieldDiff(before: Record<string, unknown>, after: Record<string, unknown>): NonNullable<JobChange["fields"]> {
  const a = userFields(before);
  const b = userFields(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => canonical(a[k]) !== canonical(b[k])).map((k) => ({ field: k, before: a[k], after: b[k] }));
}

/**
 * What `jobs apply` would do, written nowhere: created/updated/deleted by name, the fields an
 * update changes, and likely renames, so `--dry-run` and the `--prune` question can show it first.
 */
export async function planApply(store: Store, docs: { name: string; doc: Record<string, unknown> }[], opts: { prune: boolean; now?: number; defaultTz?: string }): Promise<ApplyPlan> {
  const existing = await store.listJobs();
  const byName = new Map(existing.filter((d) => typeof d.name === "string").map((d) => [d.name as string, d]));
  if (opts.defaultTz !== undefined) refusePastAt(docs, byName, opts.defaultTz, opts.now ?? Date.now());
  const named = new Set(docs.map((d) => d.name));
  const orphans = existing.filter((d) => !(typeof d.name === "string" && named.has(d.name)));
  const changes: JobChange[] = [];
  const writes: PlannedWrite[] = [];
  for (const { name, doc } of docs) {
    const current = byName.get(name);
    const fields = userFields(doc);
    if (!current) {
      const twin = orphans.find((o) => definitionOf(o) === definitionOf(fields));
      const change: JobChange = { name, change: "created", ...(twin && typeof twin.name === "string" ? { likely_rename_of: twin.name } : {}) };
      changes.push(change);
      writes.push({
        change,
        write: async (at) => {
          const id = await store.createJob({ ...fields, created_at: at, updated_at: at });
          return { undo: () => store.deleteJob(id), audit: { action: "create", job: name, job_id: id, before: null, after: fields } };
        },
      });
    } else if (!sameDocument(current, fields)) {
      const change: JobChange = { name, change: "updated", fields: fieldDiff(current, fields) };
      changes.push(change);
      writes.push({
        change,
        write: async (at) => {
          // A pause is state kept by `jobs pause`, not part of the file: a re-applied file keeps it.
          await store.replaceJob(current._id, { ...fields, ...(current.paused != null ? { paused: current.paused } : {}), created_at: current.created_at ?? at, updated_at: at });
          const { _id, ...before } = current;
          return { undo: () => store.replaceJob(_id, before), audit: { action: "update", job: name, job_id: _id, before: userFields(current), after: fields } };
        },
      });
    } else {
      changes.push({ name, change: "unchanged" });
    }
  }
  if (opts.prune) {
    for (const doc of orphans) {
      const change: JobChange = { name: typeof doc.name === "string" ? doc.name : `(unnamed ${doc._id})`, change: "deleted" };
      changes.push(change);
      writes.push({
        change,
        write: async () => {
          await store.deleteJob(doc._id);
          const { _id, ...before } = doc;
          return { undo: () => store.createJobWithId(_id, before), audit: { action: "delete", job: typeof doc.name === "string" ? doc.name : null, job_id: _id, before: userFields(doc), after: null } };
        },
      });
    }
  }
  return { changes, writes };
}

/** Writes a plan; a store that refuses one write leaves no half-applied file (the earlier writes are undone). */
export async function applyPlan(store: Store, plan: ApplyPlan, now: number, actor: Actor = osActor()): Promise<JobChange[]> {
  const at = new Date(now);
  const undo: (() => Promise<unknown>)[] = [];
  const audit: AuditChange[] = [];
  try {
    for (const w of plan.writes) {
      const done = await w.write(at);
      undo.push(done.undo);
      audit.push(done.audit);
    }
  } catch (error) {
    const failedUndo: string[] = [];
    for (const step of undo.reverse()) await step().catch((e) => failedUndo.push((e as Error).message));
    if (undo.length > 0) await store.bumpJobsRevision(at).catch(() => {});
    const rolledBack = failedUndo.length === 0 ? "nothing was changed (the writes before it were undone)" : `undoing the earlier writes failed too (${failedUndo[0]}): check jobs list`;
    throw new FleetCronError("E_APPLY", `the store refused a job write (${(error as Error).message}); ${rolledBack}`, EXIT_FAILED);
  }
  if (plan.writes.length > 0) await store.bumpJobsRevision(at);
  await recordAudit(store, actor, audit, now);
  return plan.changes;
}

/**
 * Creates or updates jobs by name from already-validated documents; `prune` deletes jobs the file
 * does not name. Agents pick the change up within one heartbeat (jobs revision).
 */
export async function applyJobs(store: Store, docs: { name: string; doc: Record<string, unknown> }[], opts: { prune: boolean; now: number; defaultTz?: string; actor?: Actor }): Promise<JobChange[]> {
  return applyPlan(store, await planApply(store, docs, opts), opts.now, opts.actor);
}

/**
 * A one-time job whose `at` has already passed when it is applied would never fire: refused, with
 * the time and the zone it was read in. An `at` the store already holds is not checked again, so a
 * re-applied file (the job done, or waiting) is unchanged rather than an error and is not re-armed.
 */
function refusePastAt(docs: { name: string; doc: Record<string, unknown> }[], byName: Map<string, JobDocument>, defaultTz: string, now: number): void {
  const problems: string[] = [];
  for (const { name, doc } of docs) {
    if (typeof doc.at !== "string" || byName.get(name)?.at === doc.at) continue;
    const parsed = parseAt(doc.at);
    if (!parsed) continue; // reported by validation
    const tz = typeof doc.tz === "string" ? doc.tz : defaultTz;
    const instant = atInstant({ kind: "at", text: doc.at, ...parsed }, tz);
    if (instant > now) continue;
    const zone = parsed.instant === undefined ? `read in ${tz}${typeof doc.tz === "string" ? "" : " (config tz)"}` : `shown in ${tz}`;
    problems.push(`job "${name}": at: "${doc.at}" is ${displayTime(instant, tz)} (${zone}), which is already past (now ${displayTime(now, tz)}); give a future time for a one-time job`);
  }
  if (problems.length > 0) throw new FleetCronError("E_AT_PAST", `${problems.join("\n")}\nnothing written: fix the problems above and apply again`, EXIT_FAILED);
}

export async function requireJob(store: Store, name: string): Promise<JobDocument> {
  const doc = await store.findJobByName(name);
  if (!doc) {
    const names = (await store.listJobs()).map((d) => d.name).filter((n): n is string => typeof n === "string");
    throw notFound("job", name, names, "the store has no jobs; add some with `fleetcron jobs apply FILE`");
  }
  return doc;
}

export async function setEnabled(store: Store, name: string, enabled: boolean, now: number, actor: Actor = osActor()): Promise<boolean> {
  const doc = await requireJob(store, name);
  if (doc.enabled === enabled) return false;
  const { _id, ...fields } = doc;
  const after = { ...fields, enabled, updated_at: new Date(now) };
  await store.replaceJob(_id, after);
  await store.bumpJobsRevision(new Date(now));
  await recordAudit(store, actor, [{ action: enabled ? "enable" : "disable", job: name, job_id: _id, before: userFields(fields), after: userFields(after) }], now);
  return true;
}

/** Deletes a job; returns its attempts still running, which the delete does not stop. */
export async function deleteJobByName(store: Store, name: string, now: number, actor: Actor = osActor()): Promise<RunRecord[]> {
  const doc = await requireJob(store, name);
  const running = await store.listRuns({ job_id: doc._id, status: "running", limit: 20 });
  await store.deleteJob(doc._id);
  await store.bumpJobsRevision(new Date(now));
  await recordAudit(store, actor, [{ action: "delete", job: name, job_id: doc._id, before: userFields(doc), after: null }], now);
  return running;
}

/**
 * Renames a job in place: same id, so its run history (kept by job id) and its place in the fleet
 * stay; `jobs apply` with a new name would instead create a new job and lose both.
 */
export async function renameJob(store: Store, from: string, to: string, now: number, actor: Actor = osActor()): Promise<JobDocument> {
  const doc = await requireJob(store, from);
  if (from === to) return doc;
  if (!to.trim()) throw new FleetCronError("E_USAGE", "the new name is empty", 2);
  if (await store.findJobByName(to)) throw new FleetCronError("E_EXISTS", `a job named "${to}" exists already; delete or rename it first`, EXIT_FAILED);
  const { _id, ...fields } = doc;
  await store.replaceJob(_id, { ...fields, name: to, updated_at: new Date(now) });
  await store.bumpJobsRevision(new Date(now));
  await recordAudit(store, actor, [{ action: "rename", job: to, job_id: _id, before: userFields(doc), after: userFields({ ...fields, name: to }) }], now);
  return { ...doc, name: to };
}

/** A job document as parsed for display: valid (with its model) or invalid (with its problems). */
export type ParsedDoc = { doc: JobDocument; job: Job; problems?: undefined } | { doc: JobDocument; job?: undefined; problems: ValidationProblem[] };

export function parseStored(doc: JobDocument, secretKeys: string[]): ParsedDoc {
  const parsed = parseJobDocument(doc, { secretKeys, id: doc._id, label: typeof doc.name === "string" ? doc.name : doc._id });
  return parsed.ok ? { doc, job: { ...parsed.job, id: doc._id } } : { doc, problems: parsed.problems };
}

export interface JobSummary {
  id: string;
  name: string;
  enabled: boolean;
  valid: boolean;
  schedule: string;
  tz: string;
  /** Where `tz` comes from: the job itself, the live agents' default zone, or this CLI's config. */
  tz_source: "job" | "agents" | "cli";
  next_fire: string | null;
  last_run: { status: RunRecord["status"]; scheduled_for: string; machine_id: string | null; attempt: number; error: string | null } | null;
  problems: ValidationProblem[];
  /**
   * Who judged `valid`: this CLI's config, or the agents (the job needs secrets this config lacks,
   * and the live agents report no invalid job). `missing_secrets` names those secrets.
   */
  judged_by: "cli" | "agents";
  missing_secrets: string[];
  /** The agent that fires it on time now, or null with the reason. */
  owner: string | null;
  owner_note: string | null;
  /** `paused`: held by `jobs pause` now; `done`: a one-time job that has run (its outcome in `done`). */
  state: "active" | "disabled" | "invalid" | "paused" | "done";
  paused: { note: string | null; by: string; at: string; until: string | null } | null;
  /** A one-time job's outcome once it ran. */
  done: { status: RunRecord["status"]; scheduled_for: string; attempt: number; finished_at: string | null } | null;
}

/**
 * A stored job judged as the fleet judges it: invalid here only for want of secrets the live
 * agents have (they report no invalid job) means valid; the agents' verdict stands.
 */
export function judgeAsFleet(parsed: ParsedDoc, secretKeys: readonly string[], view: FleetView | undefined): { judged: ParsedDoc; judgedBy: JobSummary["judged_by"]; missing: string[] } {
  const missing = view ? secretsMissingHere(parsed.doc, secretKeys) : [];
  if (!parsed.job && missing.length && view && view.alive > 0 && view.invalidReported === 0) {
    const withSecrets = parseStored(parsed.doc, [...secretKeys, ...missing]);
    if (withSecrets.job) return { judged: withSecrets, judgedBy: "agents", missing };
  }
  return { judged: parsed, judgedBy: "cli", missing };
}

export function summarizeJob(parsed: ParsedDoc, defaultTz: string, now: number, last: RunRecord | undefined, fleet?: FleetPlacement, view?: FleetView, secretKeys: readonly string[] = []): JobSummary {
  // Escaped: a stored name is printed (valid names have no control characters, so they are unchanged).
  const name = typeof parsed.doc.name === "string" ? printable(parsed.doc.name) : `(unnamed ${parsed.doc._id})`;
  const { judged, judgedBy, missing } = judgeAsFleet(parsed, secretKeys, view);
  const ownTz = judged.job?.tz ?? (typeof judged.doc.tz === "string" ? judged.doc.tz : undefined);
  const zoneOfFleet = view?.agentsTz ?? null;
  const tz = ownTz ?? zoneOfFleet ?? defaultTz;
  const tzSource: JobSummary["tz_source"] = ownTz ? "job" : zoneOfFleet ? "agents" : "cli";
  const enabled = judged.job ? judged.job.enabled : judged.doc.enabled !== false;
  const job = judged.job;
  const paused = job?.paused && pausedAt(job, now) ? job.paused : undefined;
  const resumeAt = paused ? resumesAt(job!) : undefined;
  const next = job && enabled && resumeAt !== null ? nextFireAfter(job.schedule, tz, resumeAt === undefined ? now : Math.max(now, resumeAt - 1)) : null;
  const done = job?.schedule.kind === "at" && last && last.status !== "running" && last.scheduled_for.getTime() === atInstant(job.schedule, tz) ? last : undefined;
  return {
    id: judged.doc._id,
    name,
    enabled,
    valid: judged.job !== undefined,
    schedule: judged.job ? describeSchedule(judged.job.schedule) : "(invalid)",
    tz,
    tz_source: tzSource,
    next_fire: next === null ? null : new Date(next).toISOString(),
    last_run: last
      ? { status: last.status, scheduled_for: last.scheduled_for.toISOString(), machine_id: last.machine_id ?? null, attempt: last.attempt, error: last.error ?? last.reason ?? null }
      : null,
    problems: judged.problems ?? [],
    judged_by: judgedBy,
    missing_secrets: missing,
    ...placementOf(judged, enabled, fleet),
    state: !job ? "invalid" : !enabled ? "disabled" : done ? "done" : paused ? "paused" : "active",
    paused: paused
      ? { note: paused.note ?? null, by: paused.by, at: new Date(paused.at).toISOString(), until: paused.until === undefined ? null : new Date(paused.until).toISOString() }
      : null,
    done: done ? { status: done.status, scheduled_for: done.scheduled_for.toISOString(), attempt: done.attempt, finished_at: done.finished_at?.toISOString() ?? null } : null,
  };
}

function placementOf(parsed: ParsedDoc, enabled: boolean, fleet: FleetPlacement | undefined): Pick<JobSummary, "owner" | "owner_note"> {
  if (!fleet || !parsed.job || !enabled) return { owner: null, owner_note: null };
  const { owner, note } = ownerOf(parsed.job, fleet);
  return { owner, owner_note: note };
}

/**
 * Every job summarised. With `fleet` (the live agents), validity and zone are the agents' where
 * they differ from this CLI's config only for want of its secrets or its `tz` (see fleet-view.ts).
 */
export async function listJobSummaries(store: Store, secretKeys: string[], defaultTz: string, now: number, fleet?: FleetPlacement): Promise<JobSummary[]> {
  const [docs, latest, view] = await Promise.all([store.listJobs(), store.latestRunsByJob(), fleet ? liveView(store, fleet) : Promise.resolve(undefined)]);
  return docs.map((doc) => summarizeJob(parseStored(doc, secretKeys), defaultTz, now, latest.get(doc._id), fleet, view, secretKeys));
}

/** The fleet's view from the machine records of the live members of `fleet`. */
export async function liveView(store: Store, fleet: FleetPlacement): Promise<FleetView> {
  const live = new Set(fleet.members.map((m) => m.machineId));
  return fleetViewOf((await store.listMachines()).filter((m) => live.has(m._id)));
}

export function invalidJobsOf(summaries: JobSummary[]): InvalidJob[] {
  return summaries.filter((s) => !s.valid).map((s) => ({ id: s.id, name: s.name, problems: s.problems }));
}
