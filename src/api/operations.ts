import { isPlainObject } from "../config/issues.ts";
import type { ApiRole } from "../config/schema.ts";
import { listAuditEntries, maskDocument, type Actor } from "../control/audit.ts";
import { applyJobs, deleteJobByName, listJobSummaries, parseStored, requireJob, setEnabled, summarizeJob } from "../control/jobs.ts";
import { machineSummaries } from "../control/machines.ts";
import { fleetPlacement, ownerOf } from "../control/owners.ts";
import { triggerJob, triggerThroughAgent } from "../control/trigger.ts";
import type { ExecuteContext } from "../coordinator/attempt.ts";
import type { PlacementMode } from "../coordinator/placement.ts";
import type { Clock } from "../core/clock.ts";
import { FleetCronError, EXIT_FAILED } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Redactor } from "../core/redact.ts";
import { validateJobDocs } from "../jobs/validate.ts";
import type { Job } from "../jobs/types.ts";
import type { RunRecord, RunStatus, Store } from "../store/types.ts";
import type { LifecycleOps } from "./lifecycle.ts";
import { ApiError } from "./respond.ts";

/**
 * What the API and the page's forms do, once the caller is known: each operation calls the same
 * `src/control/` function as the CLI, with the caller as the audit log's actor.
 */

export interface ApiSettings {
  secretKeys: string[];
  defaultTz: string;
  deadAfterMs: number;
  /** How often the agents read their command inbox: how long a trigger sent to another agent may wait. */
  heartbeatMs: number;
  placement: PlacementMode;
  /** Masks the agent's secret values wherever one might appear. */
  redact: Redactor;
}

export interface OperationDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  /** Read per request, so `reload-config` applies to the API too. */
  settings: () => ApiSettings;
  /** The context a triggered run executes in (this agent's machine id, secrets, fetch). */
  executeContext: () => ExecuteContext;
  /**
   * This agent runs a manual occurrence itself, like a scheduled attempt (its flow limit, a run
   * slot, its fence); resolves once claimed. Absent: triggered runs execute in this process.
   */
  runHere?: (job: Job, runId: string, by: string) => Promise<RunRecord>;
  lifecycle: LifecycleOps;
}

export const RUN_STATUSES: RunStatus[] = ["running", "success", "error", "skipped", "lost", "missed"];

export interface Caller {
  /** Token name: the audit log's actor. */
  name: string;
  role: ApiRole;
  via: "api" | "page";
}

function actorOf(deps: OperationDeps, caller: Caller): Actor {
  return { name: caller.name, via: caller.via, redact: deps.settings().redact };
}

/** Run records are redacted when written; masked again here so no response can carry a secret. */
export function publicRun(run: RunRecord, redact: Redactor): Omit<RunRecord, "nonce"> {
  const { nonce: _nonce, ...rest } = run;
  return maskDocument(rest, redact);
}

export async function listJobs(deps: OperationDeps) {
  const s = deps.settings();
  const now = deps.clock.now();
  const fleet = fleetPlacement(await deps.store.listMachines(), now, s.deadAfterMs, s.placement);
  return { jobs: await listJobSummaries(deps.store, s.secretKeys, s.defaultTz, now, fleet) };
}

export async function showJob(deps: OperationDeps, name: string) {
  const s = deps.settings();
  const now = deps.clock.now();
  const doc = await requireJob(deps.store, name);
  const runs = await deps.store.listRuns({ job_id: doc._id, limit: 10 });
  const fleet = fleetPlacement(await deps.store.listMachines(), now, s.deadAfterMs, s.placement);
  const summary = summarizeJob(parseStored(doc, s.secretKeys), s.defaultTz, now, runs[0], fleet);
  const { _id, ...document } = doc;
  return { ...summary, document: maskDocument(document, s.redact), recent_runs: runs.map((r) => publicRun(r, s.redact)) };
}

/** Validates one job document exactly as `jobs apply` does; every problem by field path. */
export function checkJobDocument(deps: OperationDeps, name: string, body: unknown) {
  if (!isPlainObject(body)) throw new ApiError(422, `job "${name}" not written: the body must be one job document (a JSON object)`, [{ path: "", message: "must be a JSON object" }]);
  const doc: Record<string, unknown> = { ...body };
  if (doc.name === undefined) doc.name = name;
  if (doc.name !== name) {
    throw new ApiError(422, `job "${name}" not written: 1 problem`, [{ path: "name", message: `must be the name in the URL (${JSON.stringify(name)}) or left out; rename a job by deleting it and putting it under its new name` }]);
  }
  const { jobs, problems } = validateJobDocs([doc], { secretKeys: deps.settings().secretKeys, strictKeys: true });
  if (problems.length > 0 || jobs.length !== 1) {
    throw new ApiError(422, `job "${name}" not written: ${problems.length} problem${problems.length === 1 ? "" : "s"}`, problems.map((p) => ({ path: p.path, message: p.message })));
  }
  return jobs[0]!;
}

export async function putJob(deps: OperationDeps, caller: Caller, name: string, body: unknown) {
  const job = checkJobDocument(deps, name, body);
  const [change] = await applyJobs(deps.store, [{ name, doc: job.doc }], { prune: false, now: deps.clock.now(), actor: actorOf(deps, caller) });
  return { status: change!.change === "created" ? 201 : 200, body: { name, change: change!.change, job: await showJob(deps, name) } };
}

export async function deleteJob(deps: OperationDeps, caller: Caller, name: string) {
  await deleteJobByName(deps.store, name, deps.clock.now(), actorOf(deps, caller));
  return { name, deleted: true };
}

export async function toggleJob(deps: OperationDeps, caller: Caller, name: string, enabled: boolean) {
  const changed = await setEnabled(deps.store, name, enabled, deps.clock.now(), actorOf(deps, caller));
  return { name, enabled, changed };
}

/**
 * Runs one manual occurrence, on the job's owner as `jobs trigger` does: the owner keeps the job's
 * flow limit and `run_on`, and the attempt has a session (taken over should its agent die). Answers
 * as soon as the attempt is recorded (`done` false, the run `running`), or with its result when it
 * finishes within `waitMs`. Without a fleet to ask (no agent wired in, or none live in the store)
 * it runs in this process.
 */
export async function triggerByName(deps: OperationDeps, caller: Caller, name: string, waitMs: number) {
  const s = deps.settings();
  const parsed = parseStored(await requireJob(deps.store, name), s.secretKeys);
  if (!parsed.job) {
    throw new ApiError(409, `job "${name}" is invalid and cannot run`, parsed.problems.map((p) => ({ path: p.path, message: p.message })));
  }
  const job = parsed.job;
  const fleet = fleetPlacement(await deps.store.listMachines(), deps.clock.now(), s.deadAfterMs, s.placement);
  if (!deps.runHere || fleet.members.length === 0) return triggerInProcess(deps, caller, job, waitMs);
  const { owner, note } = ownerOf(job, fleet);
  if (!owner) throw new ApiError(409, `job "${name}" was not run: ${note}`);
  // The serving agent, when it is the owner, claims the run itself instead of reading a command.
  const runHere = deps.runHere;
  const here = owner === deps.executeContext().machineId ? { runHere: (runId: string) => runHere(job, runId, `${caller.via} (${caller.name})`) } : {};
  const outcome = await triggerThroughAgent(deps, job, owner, { actor: actorOf(deps, caller), answerTimeoutMs: 3 * s.heartbeatMs + 2000, resultTimeoutMs: waitMs, ...here });
  switch (outcome.kind) {
    case "finished":
      return { done: true, run: publicRun(outcome.run, s.redact) };
    case "still-running":
      return { done: false, run: publicRun(outcome.run, s.redact) };
    case "refused":
      throw new ApiError(409, `job "${name}" was not run: agent ${outcome.machine} (its owner) refused: ${outcome.error}`);
    case "no-answer":
      throw new ApiError(503, `job "${name}": agent ${outcome.machine} (its owner) did not take the run within ${Math.round(outcome.waitedMs / 1000)} s; it reads commands at each heartbeat and may still run it within a minute`);
  }
}

/** The run executed by this process (no fleet to ask): recorded under this agent's machine id, with no session. */
async function triggerInProcess(deps: OperationDeps, caller: Caller, job: Job, waitMs: number) {
  const { redact } = deps.settings();
  let claimed!: (run: RunRecord) => void;
  const recorded = new Promise<RunRecord>((resolve) => (claimed = resolve));
  const finished = triggerJob(deps.executeContext(), job, { actor: actorOf(deps, caller), onClaimed: (run) => claimed(run) });
  finished.catch((error) => deps.log.warn(`api: trigger of "${job.name}" by ${caller.name} failed: ${(error as Error).message}`));
  const run = await Promise.race([recorded, finished]);
  if (waitMs > 0) {
    const done = await Promise.race([finished, deps.clock.sleep(waitMs).then(() => null)]);
    if (done) return { done: true, run: publicRun(done, redact) };
  }
  return { done: false, run: publicRun(run, redact) };
}

export async function listRuns(deps: OperationDeps, query: { job?: string; status?: RunStatus; limit: number }) {
  const runs = await deps.store.listRuns({ limit: query.limit, ...(query.job ? { job_name: query.job } : {}), ...(query.status ? { status: query.status } : {}) });
  const { redact } = deps.settings();
  return { runs: runs.map((r) => publicRun(r, redact)) };
}

export async function showRun(deps: OperationDeps, id: string) {
  const run = await deps.store.getRun(id);
  if (!run) throw new FleetCronError("E_NO_RUN", `no run with id ${JSON.stringify(id)} (ids are listed by GET /api/v1/runs)`, EXIT_FAILED);
  return publicRun(run, deps.settings().redact);
}

export async function listMachines(deps: OperationDeps) {
  return { machines: await machineSummaries(deps.store, deps.clock.now(), deps.settings().deadAfterMs) };
}

export async function listAudit(deps: OperationDeps, query: { job?: string; limit: number }) {
  return { entries: await listAuditEntries(deps.store, query, deps.settings().redact) };
}

export async function pauseJob(deps: OperationDeps, caller: Caller, name: string, input: { note?: string; until?: string }) {
  return deps.lifecycle.pause({ job: name, ...input, actor: actorOf(deps, caller), now: deps.clock.now() });
}

export async function resumeJob(deps: OperationDeps, caller: Caller, name: string) {
  return deps.lifecycle.resume({ job: name, actor: actorOf(deps, caller), now: deps.clock.now() });
}

export async function backfillJob(deps: OperationDeps, caller: Caller, name: string, input: { from: string; to: string; dryRun?: boolean; max?: number; concurrency?: number }) {
  return deps.lifecycle.backfill({ job: name, ...input, actor: actorOf(deps, caller), now: deps.clock.now() });
}

export async function retryRun(deps: OperationDeps, caller: Caller, runId: string) {
  return deps.lifecycle.retry({ runId, actor: actorOf(deps, caller), now: deps.clock.now() });
}
