/**
 * Runs a job's actions in order: `when` conditions, retries with backoff, templates with earlier
 * steps' results, and a StepRecord per action. Everything that goes into a StepRecord (errors,
 * URLs inside errors, response bodies) passes through the secrets redactor first.
 */
import type { HttpAction } from "../jobs/types.ts";
import type { StepRecord } from "../store/types.ts";
import { basicCredentials, sendRequest, type HttpAttempt, type HttpRequest } from "./http.ts";
import { createRedactor, type Redactor } from "../core/redact.ts";
import { agentTokens, type RenderedAuth, type TokenCache } from "./oauth.ts";
import { isRetryableStatus, retryDelayMs } from "./retry.ts";
import { boundSecrets, secretHostRefusal, type BoundSecret } from "./secret-hosts.ts";
import type { SigningKey } from "./signing.ts";
import { renderBody, renderString, templateNames, TemplateError, withoutRaw, type StepOutput, type TemplateContext, type TemplateUse } from "./template.ts";
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
  /** Config `vars`: trusted, shown unmasked. */
  vars?: Record<string, string>;
  /** Secret name → hosts it may be sent to (README, "Secret hosts"). */
  secretHosts?: Record<string, readonly string[]>;
  /** Config `signing_keys`; the first signs (README, "Signed requests"). */
  signingKeys?: readonly SigningKey[];
  /** The run's `deadline_sec`, shared by the main chain and its notifications. */
  deadline?: RunDeadline;
  /** OAuth2 tokens; the agent's process-wide cache by default. */
  tokens?: TokenCache;
}

/** What a run's config adds to its requests; the agent passes it through to every chain. */
export type HttpSettings = Pick<ChainOptions, "vars" | "secretHosts" | "signingKeys">;

export interface RunDeadline {
  /** Aborted when the deadline passes. */
  signal: AbortSignal;
  /** ms since epoch. */
  at: number;
  sec: number;
}

/** Starts a run's deadline now. */
export function startDeadline(sec: number, now = Date.now()): RunDeadline {
  // A timeout signal holds no timer that could keep a stopping process alive.
  return { signal: AbortSignal.timeout(Math.max(1, sec * 1000)), at: now + sec * 1000, sec };
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
  /** "deadline" when the run's deadline_sec ended it. */
  reason?: "deadline";
}

/**
 * What a run must never record: the secrets, and values it learns while running (a login step's
 * token sent in a header, URL credentials as base64). Grows during the run.
 */
class Masker {
  private readonly values: Set<string>;
  private current: Redactor;

  constructor(initial: Iterable<string>) {
    this.values = new Set(initial);
    this.current = createRedactor(this.values);
  }

  add(value: string): void {
    if (value.length === 0 || this.values.has(value)) return;
    this.values.add(value);
    this.current = createRedactor(this.values);
  }

  readonly redact: Redactor = (text, options) => this.current(text, options);
}

interface RunState {
  ctx: TemplateContext;
  masker: Masker;
  bound: BoundSecret[];
  /** The chain's signal with the deadline folded in. */
  signal: AbortSignal;
  /** Step name → its step references that some header uses: their values are masked once known. */
  headerRefs: Map<string, string[]>;
  /** Set when the deadline, not a step's own failure, ended the chain. */
  deadlineHit: boolean;
}

export async function runChain(actions: HttpAction[], opts: ChainOptions): Promise<ChainResult> {
  // Signing secrets never go into a request, but a record must not show one even if a target echoes it.
  const masker = new Masker([...Object.values(opts.secrets), ...(opts.signingKeys ?? []).map((k) => k.secret)]);
  const redact = masker.redact;
  const ctx: TemplateContext = {
    secrets: opts.secrets,
    ...(opts.vars ? { vars: opts.vars } : {}),
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
  const signal = opts.deadline ? AbortSignal.any([opts.signal, opts.deadline.signal]) : opts.signal;
  const state: RunState = { ctx, masker, bound: boundSecrets(opts.secrets, opts.secretHosts), signal, headerRefs: headerStepRefs(actions), deadlineHit: false };
  // Values of earlier chains' steps that headers here use (a notification sending the login token).
  for (const [name, refs] of state.headerRefs) if (Object.hasOwn(ctx.steps, name)) maskRefs(refs, state);
  const deadlinePassed = () => opts.deadline?.signal.aborted === true;
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
    if (!stopReason && signal.aborted) {
      if (deadlinePassed()) state.deadlineHit = true;
      stopReason = deadlinePassed() ? `the run's deadline_sec (${opts.deadline!.sec} s) passed` : "the run was aborted";
      // Steps left undone make the run a failure even though none of them failed.
      error ??= deadlinePassed() ? `deadline_sec (${opts.deadline!.sec} s) passed before step "${action.name}"` : `aborted before step "${action.name}"`;
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
    const { step, output } = await runStep(action, state, opts);
    if (output) outputs[action.name] = ctx.steps[action.name] = output;
    record(step);
    if (step.status === "error") {
      error ??= `step "${action.name}": ${step.error}`;
      if (state.deadlineHit) stopReason = `the run's deadline_sec (${opts.deadline!.sec} s) passed`;
      else if (signal.aborted) stopReason = "the run was aborted";
      else if (!action.continue_on_failure) stopReason = `step "${action.name}" failed`;
    }
  }
  return {
    status: error === undefined ? "success" : "error",
    steps,
    outputs,
    ...(error === undefined ? {} : { error: redact(error) }),
    ...(error !== undefined && state.deadlineHit ? { reason: "deadline" as const } : {}),
  };
}

/** `steps.NAME.body` / `.json…` references used in any header, by step name. */
function headerStepRefs(actions: HttpAction[]): Map<string, string[]> {
  const refs = new Map<string, string[]>();
  for (const action of actions) {
    for (const text of Object.values(action.headers)) {
      for (const written of templateNames(text)) {
        const name = withoutRaw(written);
        const step = /^steps\.(.+?)\.(status|body|json)/.exec(name);
        if (step && step[2] !== "status") refs.set(step[1]!, [...(refs.get(step[1]!) ?? []), name]);
      }
    }
  }
  return refs;
}

/** A login step's token, once known, is masked like a secret wherever it shows up later. */
function maskRefs(refs: string[], state: RunState): void {
  for (const ref of refs) {
    try {
      state.masker.add(renderString(`{{raw ${ref}}}`, state.ctx));
    } catch {
      // not there (a failed login): nothing to mask
    }
  }
}

async function runStep(action: HttpAction, state: RunState, opts: ChainOptions): Promise<{ step: StepRecord; output?: StepOutput }> {
  const { ctx, masker, signal } = state;
  const redact = masker.redact;
  const started = performance.now();
  const rand = opts.rand ?? Math.random;
  let attempts = 0;
  let last: HttpAttempt | undefined;
  const deadlinePassed = () => opts.deadline?.signal.aborted === true;
  const deadlineText = () => {
    state.deadlineHit = true;
    return `deadline_sec (${opts.deadline!.sec} s) passed after ${attempts} attempt${attempts === 1 ? "" : "s"}; no further attempt`;
  };

  const finish = (status: "success" | "error", error?: string): { step: StepRecord; output?: StepOutput } => {
    // duration_ms is the whole step, waits between retries included: what the run spent on it.
    const step: StepRecord = { name: action.name, status, attempts, duration_ms: Math.round(performance.now() - started) };
    // For later templates: masked by what the run knew before this step (a token it returns stays usable).
    const output = last && outputOf(last, redact);
    const refs = state.headerRefs.get(action.name);
    if (output && refs) {
      ctx.steps[action.name] = output;
      maskRefs(refs, state);
    }
    if (last?.status != null) step.http_status = last.status;
    if (error !== undefined) step.error = redact(error);
    if (last?.redirects?.length) step.redirects = last.redirects.map((r) => redact(r));
    if (output?.body && action.record_response !== false) {
      step.response = redact(output.body, { truncated: last!.truncated }) + (last!.truncated ? " …[truncated]" : "");
    }
    return { step, output };
  };

  let token: string | undefined;
  let refreshed = false;
  for (;;) {
    if (signal.aborted) return finish("error", deadlinePassed() ? deadlineText() : abortedAfter(attempts, last));
    const refusal = opts.mayWrite?.() ?? null;
    if (refusal !== null) return finish("error", `${refusal}; ${attempts === 0 ? "nothing was sent" : `stopped after ${attempts} attempt(s)`}`);
    let rendered: Rendered;
    try {
      rendered = render(action, ctx);
    } catch (err) {
      // Same context on every retry, so a template that fails once always will: no request is sent.
      if (err instanceof TemplateError) return finish("error", `template: ${err.message}; nothing was sent`);
      throw err;
    }
    const { req } = rendered;
    for (const value of rendered.learned) masker.add(value);
    if (action.auth && token === undefined) {
      const got = await bearerToken(rendered.auth!, state, opts);
      if (!got.ok) return finish("error", `${got.error}; the request was not sent`);
      token = got.token;
    }
    if (token !== undefined) {
      masker.add(token);
      req.headers = { ...withoutHeader(req.headers, "authorization"), Authorization: `Bearer ${token}` };
      req.sensitiveHeaders = [...(req.sensitiveHeaders ?? []), "authorization"];
    }
    const hostRefusal = secretHostRefusal(state.bound, { url: req.url, headers: req.headers, body: bodyText(req.body) });
    if (hostRefusal !== null) return finish("error", hostRefusal);
    const attempt = await sendRequest(req, {
      runId: opts.runId,
      userAgent: opts.userAgent,
      signal,
      fetch: opts.fetch,
      responseCapBytes: opts.responseCapBytes,
      ...(action.sign !== false && opts.signingKeys?.length ? { signingKey: opts.signingKeys[0] } : {}),
      checkHop: (hop) => secretHostRefusal(state.bound, hop),
    });
    // A request that could not be built (bad URL or header after rendering) never left: no attempt.
    if (attempt.failure === "request") {
      const hint = /^\s*\{\{\s*steps\./.test(action.url) ? " (a step output in a URL is percent-encoded; write {{raw steps.…}} to use a whole URL from a response)" : "";
      return finish("error", `${attempt.error}${hint}; nothing was sent`);
    }
    attempts++;
    last = attempt;
    if (last.ok) return finish("success");
    if (last.failure === "aborted") return finish("error", deadlinePassed() ? `${deadlineText()} (the request in flight was aborted)` : abortedAfter(attempts, last));
    // A refused token is fetched again once and the request repeated once, beside its retries.
    if (last.status === 401 && token !== undefined && !refreshed) {
      refreshed = true;
      const got = await bearerToken(rendered.auth!, state, opts, token);
      if (!got.ok) return finish("error", `${describe(last, attempts)}; the token could not be renewed: ${got.error}`);
      token = got.token;
      attempts--; // the repeat with a new token is the same attempt, not a retry
      continue;
    }
    const retryable =
      last.failure === "timeout" || last.failure === "network" || (last.failure === "status" && isRetryableStatus(last.status!));
    if (!retryable || attempts > action.retry.retries) return finish("error", describe(last, attempts));
    const delay = retryDelayMs(action.retry, attempts, rand, last.retryAfter, Date.now());
    if (opts.deadline && Date.now() + delay >= opts.deadline.at) {
      state.deadlineHit = true;
      return finish("error", `${describe(last, attempts)}; deadline_sec (${opts.deadline.sec} s) passes before the next retry, so none was started`);
    }
    await opts.sleep(delay, signal);
  }
}

interface Rendered {
  req: HttpRequest;
  /** Values to mask from now on: step outputs sent in headers, URL credentials. */
  learned: string[];
  auth?: RenderedAuth;
}

/**
 * Rendered for each attempt; the context does not change within a step, so every retry sends the
 * same request, which is what the Idempotency-Key tells the receiver.
 */
function render(action: HttpAction, ctx: TemplateContext): Rendered {
  const learned: string[] = [];
  const sensitiveHeaders: string[] = [];
  const headers: Record<string, string> = {};
  for (const [name, template] of Object.entries(action.headers)) {
    const uses: TemplateUse[] = [];
    headers[name] = renderString(template, ctx, "header", uses);
    if (uses.some((u) => u.source === "secret" || u.source === "step")) sensitiveHeaders.push(name.toLowerCase());
    for (const use of uses) if (use.source === "step") learned.push(use.value);
  }
  const url = renderString(action.url, ctx, "url");
  try {
    const parsed = new URL(url);
    if (parsed.username || parsed.password) {
      learned.push(basicCredentials(parsed));
      if (parsed.password) learned.push(decodeURIComponent(parsed.password));
    }
  } catch {
    // sendRequest reports the URL
  }
  const rendered: Rendered = {
    req: {
      method: action.method,
      url,
      headers,
      body: renderBody(action.body, ctx),
      timeoutMs: action.timeout_sec * 1000,
      expectStatus: action.expect_status,
      followRedirects: action.follow_redirects ?? "same-origin",
      sensitiveHeaders,
    },
    learned,
  };
  if (action.auth) {
    const a = action.auth;
    rendered.auth = {
      token_url: renderString(a.token_url, ctx, "url"),
      client_id: renderString(a.client_id, ctx),
      client_secret: renderString(a.client_secret, ctx),
      client_auth: a.client_auth,
      ...(a.scope ? { scope: renderString(a.scope, ctx) } : {}),
      ...(a.audience ? { audience: renderString(a.audience, ctx) } : {}),
    };
    learned.push(rendered.auth.client_secret);
  }
  return rendered;
}

async function bearerToken(auth: RenderedAuth, state: RunState, opts: ChainOptions, stale?: string) {
  // The client secret goes to the token endpoint: its host must be one the secret allows.
  const body = [auth.client_id, auth.client_secret, auth.scope ?? "", auth.audience ?? ""].join("&");
  const refusal = secretHostRefusal(state.bound, { url: auth.token_url, headers: {}, body });
  if (refusal !== null) return { ok: false as const, error: `auth: ${refusal}` };
  return (opts.tokens ?? agentTokens).token(auth, { runId: opts.runId, userAgent: opts.userAgent, signal: state.signal, fetch: opts.fetch }, stale);
}

function withoutHeader(headers: Record<string, string>, lowerName: string): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== lowerName));
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return "";
  return typeof body === "string" ? body : JSON.stringify(body);
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
