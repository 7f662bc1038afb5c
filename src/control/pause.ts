import { UsageError } from "../core/errors.ts";
import { parseAt, atInstant } from "../schedule/at.ts";
import { parseEvery } from "../schedule/every.ts";
import { displayTime } from "../schedule/display.ts";
import type { Store } from "../store/types.ts";
import { osActor, recordAudit, type Actor } from "./audit.ts";
import { requireJob } from "./jobs.ts";

/** The pause state as stored on the job document (ISO strings, so both stores keep it as written). */
export interface PauseState {
  note?: string;
  by: string;
  at: string;
  until?: string;
}

export interface PauseResult {
  name: string;
  paused: PauseState;
  /** Whether the job was already paused (its pause is replaced). */
  replaced: boolean;
}

/**
 * `--until`: a duration from now ("5s", "2h", "1d") or a time — ISO with an offset, or a wall time
 * read in the job's zone, as `at` is. Refused when it is not in the future.
 */
export function resolveUntil(text: string, tz: string, now: number): number {
  const duration = parseEvery(text.trim());
  if (duration !== null) return now + duration;
  const parsed = parseAt(text);
  if (parsed === null) throw new UsageError(`--until must be a duration such as "5s", "30m", "2h" or a time such as "2026-12-24T18:00" (in ${tz}) or "2026-12-24T18:00:00Z" (got "${text}")`);
  const until = atInstant({ kind: "at", text, ...parsed }, tz);
  if (until <= now) throw new UsageError(`--until ${text} is ${displayTime(until, tz)}, which is not in the future (now ${displayTime(now, tz)})`);
  return until;
}

/**
 * `jobs pause`: the job fires nothing and leaves no per-occurrence record until `jobs resume` or
 * `until`. Agents read the pause at their next heartbeat (jobs revision) and each resumes on its
 * own at `until`, so nothing needs to be written then.
 */
export async function pauseJob(store: Store, name: string, opts: { note?: string; until?: string; by: string; defaultTz: string; now: number; actor?: Actor }): Promise<PauseResult> {
  const doc = await requireJob(store, name);
  const tz = typeof doc.tz === "string" ? doc.tz : opts.defaultTz;
  const until = opts.until === undefined ? undefined : resolveUntil(opts.until, tz, opts.now);
  const paused: PauseState = {
    by: opts.by,
    at: new Date(opts.now).toISOString(),
    ...(opts.note ? { note: opts.note } : {}),
    ...(until !== undefined ? { until: new Date(until).toISOString() } : {}),
  };
  const { _id, ...fields } = doc;
  await store.replaceJob(_id, { ...fields, paused, updated_at: new Date(opts.now) });
  await store.bumpJobsRevision(new Date(opts.now));
  await recordAudit(store, opts.actor ?? osActor(), [{ action: "pause", job: name, job_id: _id, before: fields, after: { ...fields, paused }, ...(opts.note ? { note: opts.note } : {}) }], opts.now);
  return { name, paused, replaced: isPauseState(doc.paused) };
}

export interface ResumeResult {
  name: string;
  /** false: it was not paused. */
  changed: boolean;
  /** Its `until` had already passed: it had resumed by itself (the stale state is removed now). */
  lapsed: boolean;
  was: PauseState | null;
}

/** `jobs resume`: the next occurrence fires again (those during the pause are not caught up). */
export async function resumeJob(store: Store, name: string, now: number, actor: Actor = osActor()): Promise<ResumeResult> {
  const doc = await requireJob(store, name);
  if (doc.paused === undefined || doc.paused === null) return { name, changed: false, lapsed: false, was: null };
  const { _id, paused, ...fields } = doc;
  await store.replaceJob(_id, { ...fields, updated_at: new Date(now) });
  await store.bumpJobsRevision(new Date(now));
  await recordAudit(store, actor, [{ action: "resume", job: name, job_id: _id, before: { ...fields, paused }, after: fields }], now);
  const was = isPauseState(paused) ? paused : null;
  const lapsed = was?.until !== undefined && Date.parse(was.until) <= now;
  return { name, changed: true, lapsed, was };
}

function isPauseState(value: unknown): value is PauseState {
  return typeof value === "object" && value !== null && typeof (value as PauseState).by === "string";
}

/** Who paused a job, for the record: OS user@host (the login name from the environment when the OS has none). */
export function operatorName(user: () => string, host: () => string, env: Record<string, string | undefined> = {}): string {
  let name: string | undefined;
  try {
    name = user();
  } catch {
    // no passwd entry (a container)
  }
  return `${name || env.USER || env.LOGNAME || env.USERNAME || "unknown"}@${host()}`;
}
