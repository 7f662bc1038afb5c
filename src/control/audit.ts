import { hostname, userInfo } from "node:os";
import { FleetCronError, EXIT_FAILED } from "../core/errors.ts";
import { MASK, type Redactor } from "../core/redact.ts";
import type { AuditRecord, JobDocument, Store } from "../store/types.ts";

/**
 * The audit log (`audit` collection): who changed what, when, through which door. Every change made
 * through `src/control/` (CLI, API, page, jobs_file) writes one record; the history sweeper keeps
 * them `history_days` like runs.
 */

export type AuditVia = AuditRecord["via"];

/** Who is making a change: passed into the control functions by the CLI, the API and the page. */
export interface Actor {
  name: string;
  via: AuditVia;
  /** Masks secret values a document might carry literally (the agent's configured secrets). */
  redact?: Redactor;
}

/** The person at a shell: OS user@host. */
export function osActor(via: AuditVia = "cli"): Actor {
  let user = process.env.USER ?? process.env.USERNAME ?? "unknown";
  try {
    user = userInfo().username || user;
  } catch {
    // No passwd entry (a container's uid): the environment's name will do.
  }
  return { name: `${user}@${hostname()}`, via };
}

/** Keys whose values are credentials wherever they sit in a job document (headers, bodies, hook params). */
const SECRET_KEY = /(secret|passw(or)?d|token|api[-_]?key|authorization|cookie|credential|private[-_]?key|signature)/i;
/** A value that only names secrets (`{{API_KEY}}`, `Bearer {{TOKEN}}`) reveals nothing and is kept. */
const ONLY_TEMPLATES = /^(?:[^{}]*\{\{[^{}]+\}\}[^{}]*)+$/;

/**
 * A job document fit to show or record: values under secret-like keys are masked unless they only
 * reference templates, and any configured secret value found anywhere is masked too. Job documents
 * should hold template names only; this is for the ones written by hand that do not.
 */
export function maskDocument<T>(value: T, redact?: Redactor): T {
  return maskValue(value, false, redact) as T;
}

function maskValue(value: unknown, secretKey: boolean, redact?: Redactor): unknown {
  if (typeof value === "string") {
    if (secretKey && !(ONLY_TEMPLATES.test(value) && !/Bearer\s+[^\s{]/i.test(value))) return MASK;
    return redact ? redact(value) : value;
  }
  if (Array.isArray(value)) return value.map((v) => maskValue(v, secretKey, redact));
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskValue(v, secretKey || SECRET_KEY.test(k), redact)]));
  }
  if (secretKey && (typeof value === "number" || typeof value === "boolean")) return MASK;
  return value;
}

function withoutId(doc: JobDocument | Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  if (!doc) return null;
  const { _id, ...rest } = doc as Record<string, unknown>;
  return rest;
}

export interface AuditChange {
  action: string;
  job: string | null;
  job_id?: string;
  run_id?: string;
  before?: JobDocument | Record<string, unknown> | null;
  after?: JobDocument | Record<string, unknown> | null;
  note?: string;
}

/** Orders the records one process writes within one millisecond (one apply's changes) as written. */
let sequence = 0;

export function auditRecord(actor: Actor, change: AuditChange, now: number): AuditRecord {
  sequence = (sequence + 1) % 1_000_000;
  const record: AuditRecord = {
    _id: `${new Date(now).toISOString()}-${String(sequence).padStart(6, "0")}-${crypto.randomUUID().slice(0, 8)}`,
    at: new Date(now),
    actor: actor.name,
    via: actor.via,
    action: change.action,
    job: change.job,
  };
  if (change.job_id !== undefined) record.job_id = change.job_id;
  if (change.run_id !== undefined) record.run_id = change.run_id;
  if (change.before !== undefined) record.before = maskDocument(withoutId(change.before), actor.redact);
  if (change.after !== undefined) record.after = maskDocument(withoutId(change.after), actor.redact);
  if (change.note !== undefined) record.note = actor.redact ? actor.redact(change.note) : change.note;
  return record;
}

/**
 * Writes the records of a change that has been made. A store that takes the change but refuses its
 * record is said plainly: the change stands, the log lacks it.
 */
export async function recordAudit(store: Store, actor: Actor, changes: AuditChange[], now: number): Promise<void> {
  for (const change of changes) {
    try {
      await store.insertAudit(auditRecord(actor, change, now));
    } catch (error) {
      const what = `${change.action}${change.job ? ` "${change.job}"` : ""}`;
      throw new FleetCronError("E_AUDIT", `${what} was done, but its audit record could not be written (${(error as Error).message})`, EXIT_FAILED);
    }
  }
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  via: AuditVia;
  action: string;
  job: string | null;
  job_id: string | null;
  run_id: string | null;
  note: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

/** The audit log as `fleetcron audit`, the API and the page show it (masked once more on the way out). */
export async function listAuditEntries(store: Store, query: { job?: string; limit: number }, redact?: Redactor): Promise<AuditEntry[]> {
  const records = await store.listAudit(query);
  return records.map((r) => ({
    id: r._id,
    at: r.at.toISOString(),
    actor: r.actor,
    via: r.via,
    action: r.action,
    job: r.job,
    job_id: r.job_id ?? null,
    run_id: r.run_id ?? null,
    note: r.note ?? null,
    before: r.before === undefined ? null : maskDocument(r.before, redact),
    after: r.after === undefined ? null : maskDocument(r.after, redact),
  }));
}
