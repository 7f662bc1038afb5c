/**
 * Runs a job's actions in order: `when` conditions, retries with backoff, templates with earlier
 * steps' results, and a StepRecord per action. Everything that goes into a StepRecord (errors,
 * URLs inside errors, response bodies) passes through the secrets redactor first.
 */
import type { HttpAction } from "../jobs/types.ts";
import type { StepRecord } from "../store/types.ts";
import { sendRequest, type HttpAttempt, type HttpRequest } from "./http.ts";
import { createRedactor, type Redactor } from "../core/redact.ts";
import { isRetryableStatus, retryDelayMs } from "./retry.ts";
import { renderString, renderValue, TemplateError, type StepOutput, type TemplateContext } from "./template.ts";
import { whenMismatch, type WallParts } from "./when.ts";

export interface ChainOptions {
  /** The occurrence's run id: the same for every attempt and every step (`Idempotency-Key`). */
  runId: string;
  /**
   * The run's attempt number (1, then 2… after a takeover), exposed as `{{attempt}}`. Not the retry
   * number within a step: a receiver sees the same `{{attempt}}` on every retry of a request.
   */
  attempt: number;
  /** ms since epoch; `{{scheduled_for}}` is its ISO form in UTC. */
  scheduledFor: number;
  jobName: string;
  machineId: string;
  secrets: Record<string, string>;
  userAgent: string;
  /** The occurrence's wall time in the job's zone, for `when`. */
  wall: WallParts;
  /** Aborted at the agent's fence deadline (its connections close) or on a hard shutdown. */
  signal: AbortSignal;
  /**
   * Asked before every request (each step, retry and notification): a reason not to send it, or
   * null. The agent refuses once it is within the abort margin of its fence deadline, so no byte
   * leaves after the deadline (docs/protocol.md, "Liveness and the fence").
   */
  mayWrite?: () => string | null;
  /** Clock.sleep: resolves early, without rejecting, when the signal aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  rand?: () => number;
  fetch?: typeof fetch;
  responseCapBytes?: number;
  /** `{{failures}}` in on_failure and on_recovery: consecutive failed occurrences (coordinator/notify.ts). */
  failures?: number;
  /** Lets on_success/on_failure chains refer to the main chain's steps. */
  initialSteps?: Record<string, StepOutput>;
  /** Called as each step finishes (or is skipped), in order. */
  onStep?: (step: StepRecord) => void;
}

export interface ChainResult {
  status: "success" | "error";
  steps: StepRecord[];
  /**
   * This chain's step results for later templates (pass them as `initialSteps` to on_success or
   * on_failure). Redacted like the records, so the whole result is safe to log: a step that needs a
   * secret names it (`{{KEY}}`) rather than reading it back from a response.
   */
  outputs: Record<string, StepOutput>;
  /** The first failure, naming its step. */
  error?: string;
}

export async function runChain(actions: HttpAction[], opts: ChainOptions): Promise<ChainResult> {
  const redact = createRedactor(Object.values(opts.secrets));
  const ctx: TemplateContext = {
    secrets: opts.secrets,
    builtins: {
      run_id: opts.runId,
      scheduled_for: new Date(opts.scheduledFor).toISOString(),
      "job.name": opts.jobName,
      machine_id: opts.machineId,
      attempt: String(opts.attempt),
      ...(opts.failures !== undefined ? { failures: String(opts.failures) } : {}),
    },
    steps: { ...opts.initialSteps },
  };
  const outputs: Record<string, StepOutput> = {};
  const steps: StepRecord[] = [];
  let error: string | undefined;
  // Set once a step fails without continue_on_failure (or the run is aborted): later steps are skipped.
  let stopReason: string | undefined;

  const record = (step: StepRecord) => {
    steps.push(step);
    opts.onStep?.(step);
  };

  for (const action of actions) {
    if (!stopReason && opts.signal.aborted) {
      stopReason = "the run was aborted";
      // Steps left undone make the run a failure even though none of them failed.
      error ??= `aborted before step "${action.name}"`;
    }
    if (stopReason) {
      record({ name: action.name, status: "skipped", attempts: 0, duration_ms: 0, reason: stopReason });
      continue;
    }
    const mismatch = whenMismatch(action.when, opts.wall);
    if (mismatch) {
      record({ name: action.name, status: "skipped", attempts: 0, duration_ms: 0, reason: redact(mismatch) });
      continue;
    }
    const { step, output } = await runStep(action, ctx, opts, redact);
    if (output) outputs[action.name] = ctx.steps[action.name] = output;
    record(step);
    if (step.status === "error") {
      error ??= `step "${action.name}": ${step.error}`;
      if (opts.signal.aborted) stopReason = "the run was aborted";
      else if (!action.continue_on_failure) stopReason = `step "${action.name}" failed`;
    }
  }
  return { status: error === undefined ? "success" : "error", steps, outputs, ...(error === undefined ? {} : { error: redact(error) }) };
}

async function runStep(
  action: HttpAction,
  ctx: TemplateContext,
  opts: ChainOptions,
  redact: Redactor,
): Promise<{ step: StepRecord; output?: StepOutput }> {
  const started = performance.now();
  const rand = opts.rand ?? Math.random;
  let attempts = 0;
  let last: HttpAttempt | undefined;

  const finish = (status: "success" | "error", error?: string): { step: StepRecord; output?: StepOutput } => {
    // duration_ms is the whole step, waits between retries included: what the run spent on it.
    const step: StepRecord = { name: action.name, status, attempts, duration_ms: Math.round(performance.now() - started) };
    const output = last && outputOf(last, redact);
    if (last?.status != null) step.http_status = last.status;
    if (error !== undefined) step.error = redact(error);
    if (output?.body) step.response = output.body + (last!.truncated ? " …[truncated]" : "");
    return { step, output };
  };

  for (;;) {
    if (opts.signal.aborted) return finish("error", abortedAfter(attempts, last));
    const refusal = opts.mayWrite?.() ?? null;
    if (refusal !== null) return finish("error", `${refusal}; ${attempts === 0 ? "nothing was sent" : `stopped after ${attempts} attempt(s)`}`);
    let req: HttpRequest;
    try {
      req = render(action, ctx);
    } catch (err) {
      // Same context on every retry, so a template that fails once always will: no request is sent.
      if (err instanceof TemplateError) return finish("error", `template: ${err.message}; nothing was sent`);
      throw err;
    }
    const attempt = await sendRequest(req, {
      runId: opts.runId,
      userAgent: opts.userAgent,
      signal: opts.signal,
      fetch: opts.fetch,
      responseCapBytes: opts.responseCapBytes,
    });
    // A request that could not be built (bad URL or header after rendering) never left: no attempt.
    if (attempt.failure === "request") return finish("error", `${attempt.error}; nothing was sent`);
    attempts++;
    last = attempt;
    if (last.ok) return finish("success");
    if (last.failure === "aborted") return finish("error", abortedAfter(attempts, last));
    const retryable =
      last.failure === "timeout" || last.failure === "network" || (last.failure === "status" && isRetryableStatus(last.status!));
    if (!retryable || attempts > action.retry.retries) return finish("error", describe(last, attempts));
    await opts.sleep(retryDelayMs(action.retry, attempts, rand, last.retryAfter, Date.now()), opts.signal);
  }
}

/**
 * Rendered for each attempt; the context does not change within a step, so every retry sends the
 * same request, which is what the Idempotency-Key tells the receiver.
 */
function render(action: HttpAction, ctx: TemplateContext): HttpRequest {
  return {
    method: action.method,
    url: renderString(action.url, ctx),
    headers: Object.fromEntries(Object.entries(action.headers).map(([k, v]) => [k, renderString(v, ctx)])),
    body: renderValue(action.body, ctx),
    timeoutMs: action.timeout_sec * 1000,
    expectStatus: action.expect_status,
  };
}

function outputOf(attempt: HttpAttempt, redact: Redactor): StepOutput {
  const output: StepOutput = { status: attempt.status, body: redact(attempt.body, { truncated: attempt.truncated }) };
  // A cut body is not the JSON the server sent; `steps.X.json` then fails clearly rather than half-works.
  if (!attempt.truncated && output.body.trim() !== "") {
    try {
      output.json = JSON.parse(output.body);
    } catch {
      // not JSON: `steps.X.body` still works
    }
  }
  return output;
}

function describe(attempt: HttpAttempt, attempts: number): string {
  return attempts > 1 ? `${attempt.error}, after ${attempts} attempts` : attempt.error!;
}

function abortedAfter(attempts: number, last: HttpAttempt | undefined): string {
  const what = last?.failure === "aborted" ? last.error : "aborted";
  const before = last && last.failure !== "aborted" ? `; last attempt: ${last.error ?? `HTTP ${last.status}`}` : "";
  return `${what} after ${attempts} attempt${attempts === 1 ? "" : "s"}${before}`;
}
