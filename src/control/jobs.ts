import { FleetCronError, EXIT_FAILED } from "../core/errors.ts";
import { parseJobDocument } from "../jobs/schema.ts";
import type { InvalidJob, Job, ValidationProblem } from "../jobs/types.ts";
import { describeSchedule, nextFireAfter } from "../schedule/next.ts";
import type { JobDocument, RunRecord, Store } from "../store/types.ts";
import { osActor, recordAudit, type Actor, type AuditChange } from "./audit.ts";
import { ownerOf, type FleetPlacement } from "./owners.ts";

/** Fields FleetCron itself keeps on a job document; they never count as a change by the user. */
const BOOKKEEPING = ["_id", "created_at", "updated_at"] as const;

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
}

/**
 * Creates or updates jobs by name from already-validated documents; `prune` deletes jobs the file
 * does not name. Agents pick the change up within one heartbeat (jobs revision).
 */
export async function applyJobs(store: Store, docs: { name: string; doc: Record<string, unknown> }[], opts: { prune: boolean; now: number; actor?: Actor }): Promise<JobChange[]> {
  const changes: JobChange[] = [];
  const audit: AuditChange[] = [];
  const existing = await store.listJobs();
  const byName = new Map(existing.filter((d) => typeof d.name === "string").map((d) => [d.name as string, d]));
  const at = new Date(opts.now);
  // What each write undoes, newest last: a store that refuses one write leaves no half-applied file.
  const undo: (() => Promise<unknown>)[] = [];
  try {
    for (const { name, doc } of docs) {
      const current = byName.get(name);
      const fields = userFields(doc);
      if (!current) {
        const id = await store.createJob({ ...fields, created_at: at, updated_at: at });
        undo.push(() => store.deleteJob(id));
        changes.push({ name, change: "created" });
        audit.push({ action: "create", job: name, job_id: id, before: null, after: fields });
      } else if (!sameDocument(current, fields)) {
        await store.replaceJob(current._id, { ...fields, created_at: current.created_at ?? at, updated_at: at });
        const { _id, ...before } = current;
        undo.push(() => store.replaceJob(_id, before));
        changes.push({ name, change: "updated" });
        audit.push({ action: "update", job: name, job_id: _id, before: userFields(current), after: fields });
      } else {
        changes.push({ name, change: "unchanged" });
      }
    }
    if (opts.prune) {
      const keep = new Set(docs.map((d) => d.name));
      for (const doc of existing) {
        if (typeof doc.name === "string" && keep.has(doc.name)) continue;
        await store.deleteJob(doc._id);
        const { _id, ...before } = doc;
        undo.push(() => store.createJobWithId(_id, before));
        changes.push({ name: typeof doc.name === "string" ? doc.name : `(unnamed ${doc._id})`, change: "deleted" });
        audit.push({ action: "delete", job: typeof doc.name === "string" ? doc.name : null, job_id: _id, before: userFields(doc), after: null });
      }
    }
  } catch (error) {
    const failedUndo: string[] = [];
    for (const step of undo.reverse()) await step().catch((e) => failedUndo.push((e as Error).message));
    if (undo.length > 0) await store.bumpJobsRevision(at).catch(() => {});
    const rolledBack = failedUndo.length === 0 ? "nothing was changed (the writes before it were undone)" : `undoing the earlier writes failed too (${failedUndo[0]}): check jobs list`;
    throw new FleetCronError("E_APPLY", `the store refused a job write (${(error as Error).message}); ${rolledBack}`, EXIT_FAILED);
  }
  if (changes.some((c) => c.change !== "unchanged")) await store.bumpJobsRevision(at);
  await recordAudit(store, opts.actor ?? osActor(), audit, opts.now);
  return changes;
}

export async function requireJob(store: Store, name: string): Promise<JobDocument> {
  const doc = await store.findJobByName(name);
  if (!doc) {
    const names = (await store.listJobs()).map((d) => d.name).filter((n): n is string => typeof n === "string");
    throw new FleetCronError("E_NO_JOB", `no job named "${name}"${names.length ? ` (jobs: ${names.slice(0, 10).map((n) => `"${n}"`).join(", ")}${names.length > 10 ? ", …" : ""})` : " (the store has no jobs; add some with `fleetcron jobs apply FILE`)"}`, EXIT_FAILED);
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

export async function deleteJobByName(store: Store, name: string, now: number, actor: Actor = osActor()): Promise<void> {
  const doc = await requireJob(store, name);
  await store.deleteJob(doc._id);
  await store.bumpJobsRevision(new Date(now));
  await recordAudit(store, actor, [{ action: "delete", job: name, job_id: doc._id, before: userFields(doc), after: null }], now);
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
  next_fire: string | null;
  last_run: { status: RunRecord["status"]; scheduled_for: string; machine_id: string | null; attempt: number; error: string | null } | null;
  problems: ValidationProblem[];
  /** The agent that fires it on time now, or null with the reason. */
  owner: string | null;
  owner_note: string | null;
}

export function summarizeJob(parsed: ParsedDoc, defaultTz: string, now: number, last: RunRecord | undefined, fleet?: FleetPlacement): JobSummary {
  const name = typeof parsed.doc.name === "string" ? parsed.doc.name : `(unnamed ${parsed.doc._id})`;
  const tz = parsed.job?.tz ?? (typeof parsed.doc.tz === "string" ? parsed.doc.tz : defaultTz);
  const enabled = parsed.job ? parsed.job.enabled : parsed.doc.enabled !== false;
  const next = parsed.job && enabled ? nextFireAfter(parsed.job.schedule, tz, now) : null;
  return {
    id: parsed.doc._id,
    name,
    enabled,
    valid: parsed.job !== undefined,
    schedule: parsed.job ? describeSchedule(parsed.job.schedule) : "(invalid)",
    tz,
    next_fire: next === null ? null : new Date(next).toISOString(),
    last_run: last
      ? { status: last.status, scheduled_for: last.scheduled_for.toISOString(), machine_id: last.machine_id ?? null, attempt: last.attempt, error: last.error ?? last.reason ?? null }
      : null,
    problems: parsed.problems ?? [],
    ...placementOf(parsed, enabled, fleet),
  };
}

function placementOf(parsed: ParsedDoc, enabled: boolean, fleet: FleetPlacement | undefined): Pick<JobSummary, "owner" | "owner_note"> {
  if (!fleet || !parsed.job || !enabled) return { owner: null, owner_note: null };
  const { owner, note } = ownerOf(parsed.job, fleet);
  return { owner, owner_note: note };
}

export async function listJobSummaries(store: Store, secretKeys: string[], defaultTz: string, now: number, fleet?: FleetPlacement): Promise<JobSummary[]> {
  const [docs, latest] = await Promise.all([store.listJobs(), store.latestRunsByJob()]);
  return docs.map((doc) => summarizeJob(parseStored(doc, secretKeys), defaultTz, now, latest.get(doc._id), fleet));
}

export function invalidJobsOf(summaries: JobSummary[]): InvalidJob[] {
  return summaries.filter((s) => !s.valid).map((s) => ({ id: s.id, name: s.name, problems: s.problems }));
}
