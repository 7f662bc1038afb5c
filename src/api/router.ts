import type { ApiRole } from "../config/schema.ts";
import { FleetCronError } from "../core/errors.ts";
import { bearerToken, roleAllows, type FailureThrottle, type TokenSet } from "./auth.ts";
import * as ops from "./operations.ts";
import { buildOpenApi, type ParamDoc, type RouteDoc } from "./openapi.ts";
import { ApiError, errorResponse, json } from "./respond.ts";
import type { RunStatus } from "../store/types.ts";

/**
 * `/api/v1`: JSON in and out, `Authorization: Bearer <token>`, errors as `{ error, problems? }`.
 * One table holds every route with its role and its OpenAPI description, so the document
 * (`GET /api/v1/openapi.json`) cannot list a route that is not served or miss one that is.
 */

export const API_PREFIX = "/api/v1";
const MAX_BODY_BYTES = 1 << 20;

export interface ApiDeps extends ops.OperationDeps {
  /** Read per request: `reload-config` may change the tokens. */
  tokens: () => TokenSet;
  throttle: FailureThrottle;
}

export interface RequestInfo {
  /** The client's address, for slowing down repeated failures. */
  address: string;
}

interface RouteContext {
  deps: ApiDeps;
  params: Record<string, string>;
  query: URLSearchParams;
  caller: ops.Caller;
  body: () => Promise<unknown>;
}

type Handler = (ctx: RouteContext) => Promise<{ status?: number; body: unknown; headers?: Record<string, string> }>;

/** A route: what the OpenAPI document says of it, and its handler. */
export interface Route extends RouteDoc {
  handle: Handler;
}

const NAME: ParamDoc = { name: "name", in: "path", required: true, description: "The job's name (URL-encoded)", schema: { type: "string" } };
const RUN_ID: ParamDoc = { name: "id", in: "path", required: true, description: "The run record's id (`_id`, URL-encoded: `#` is `%23`)", schema: { type: "string" } };
const LIMIT = (fallback: number, max: number): ParamDoc => ({ name: "limit", in: "query", description: `How many, newest first (default ${fallback})`, schema: { type: "integer", minimum: 1, maximum: max } });

function intParam(query: URLSearchParams, key: string, fallback: number, min: number, max: number): number {
  const raw = query.get(key);
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ApiError(400, `query ${key} must be a whole number ${min}-${max} (got ${JSON.stringify(raw)})`, [{ path: key, message: `must be a whole number ${min}-${max}` }]);
  return n;
}

async function objectBody(ctx: RouteContext, optional: boolean): Promise<Record<string, unknown>> {
  const body = await ctx.body();
  if (body === undefined && optional) return {};
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new ApiError(400, "the body must be a JSON object", [{ path: "", message: "must be a JSON object" }]);
  return body as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new ApiError(400, `${key} must be a string`, [{ path: key, message: "must be a string" }]);
  return value;
}

function optionalInt(body: Record<string, unknown>, key: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) throw new ApiError(400, `${key} must be a whole number 1 or greater`, [{ path: key, message: "must be a whole number 1 or greater" }]);
  return value;
}

const LIFECYCLE_RESPONSES: Record<number, [string, string]> = { 200: ["Done", "LifecycleResult"], 404: ["No such job or run", "Error"], 409: ["Refused, with the reason", "Error"], 501: ["Not available in this build", "Error"] };

export const ROUTES: Route[] = [
  {
    method: "GET", path: "/jobs", role: "read", operationId: "listJobs", summary: "Jobs with schedule, zone, enabled, next fire time, last result and owner",
    responses: { 200: ["The jobs", "JobList"] },
    handle: async ({ deps }) => ({ body: await ops.listJobs(deps) }),
  },
  {
    method: "GET", path: "/jobs/{name}", role: "read", operationId: "getJob", summary: "One job: summary, stored document (secret-like values masked) and recent runs", params: [NAME],
    responses: { 200: ["The job", "JobDetail"], 404: ["No such job", "Error"] },
    handle: async ({ deps, params }) => ({ body: await ops.showJob(deps, params.name!) }),
  },
  {
    method: "PUT", path: "/jobs/{name}", role: "admin", operationId: "putJob", summary: "Create or replace a job; validated exactly as `jobs apply`, nothing written on a problem", params: [NAME],
    requestBody: { schema: "JobDocument", required: true },
    responses: { 200: ["Replaced (or unchanged)", "JobWrite"], 201: ["Created", "JobWrite"], 400: ["Not JSON", "Error"], 422: ["Invalid: every problem by field path", "Error"] },
    handle: async ({ deps, caller, params, body }) => {
      const result = await ops.putJob(deps, caller, params.name!, await body());
      return { status: result.status, body: result.body };
    },
  },
  {
    method: "DELETE", path: "/jobs/{name}", role: "admin", operationId: "deleteJob", summary: "Delete a job (its run history stays)", params: [NAME],
    responses: { 200: ["Deleted", "JobDeleted"], 404: ["No such job", "Error"] },
    handle: async ({ deps, caller, params }) => ({ body: await ops.deleteJob(deps, caller, params.name!) }),
  },
  ...(["enable", "disable"] as const).map(
    (verb): Route => ({
      method: "POST", path: `/jobs/{name}/${verb}`, role: "operate", operationId: `${verb}Job`, summary: `${verb === "enable" ? "Enable" : "Disable"} a job`, params: [NAME],
      responses: { 200: [`${verb}d (changed false when it already was)`, "JobToggle"], 404: ["No such job", "Error"] },
      handle: async ({ deps, caller, params }) => ({ body: await ops.toggleJob(deps, caller, params.name!, verb === "enable") }),
    }),
  ),
  {
    method: "POST", path: "/jobs/{name}/trigger", role: "operate", operationId: "triggerJob",
    summary: "Run one manual occurrence now on the job's owner, within its flow limit (exactly once across the fleet); 202 once recorded, or 200 with the result when it finishes within `wait` seconds",
    params: [NAME, { name: "wait", in: "query", description: "Seconds to wait for the result (0-60, default 0)", schema: { type: "integer", minimum: 0, maximum: 60 } }],
    responses: {
      200: ["Finished within `wait`", "TriggerResult"],
      202: ["Recorded and running", "TriggerResult"],
      404: ["No such job", "Error"],
      409: ["The job is invalid, no live agent may run it (`run_on`), or its owner refused", "Error"],
      503: ["The job's owner did not take the run within three heartbeats", "Error"],
    },
    handle: async ({ deps, caller, params, query }) => {
      const result = await ops.triggerByName(deps, caller, params.name!, intParam(query, "wait", 0, 0, 60) * 1000);
      return { status: result.done ? 200 : 202, body: result, headers: { location: `${API_PREFIX}/runs/${encodeURIComponent(String(result.run._id))}` } };
    },
  },
  {
    method: "POST", path: "/jobs/{name}/pause", role: "operate", operationId: "pauseJob", summary: "Pause a job, with a note and an optional end (ISO time or duration)", params: [NAME],
    requestBody: { schema: "PauseRequest", required: false }, responses: LIFECYCLE_RESPONSES,
    handle: async (ctx) => {
      const body = await objectBody(ctx, true);
      const note = optionalString(body, "note");
      const until = optionalString(body, "until");
      return { body: await ops.pauseJob(ctx.deps, ctx.caller, ctx.params.name!, { ...(note !== undefined ? { note } : {}), ...(until !== undefined ? { until } : {}) }) };
    },
  },
  {
    method: "POST", path: "/jobs/{name}/resume", role: "operate", operationId: "resumeJob", summary: "Resume a paused job", params: [NAME], responses: LIFECYCLE_RESPONSES,
    handle: async ({ deps, caller, params }) => ({ body: await ops.resumeJob(deps, caller, params.name!) }),
  },
  {
    method: "POST", path: "/jobs/{name}/backfill", role: "operate", operationId: "backfillJob", summary: "Run the occurrences of a past range that never ran (no record, or missed)", params: [NAME],
    requestBody: { schema: "BackfillRequest", required: true }, responses: { ...LIFECYCLE_RESPONSES, 400: ["Bad range", "Error"] },
    handle: async (ctx) => {
      const body = await objectBody(ctx, false);
      const from = optionalString(body, "from");
      const to = optionalString(body, "to");
      if (from === undefined || to === undefined) throw new ApiError(400, "backfill needs from and to (ISO times)", [...(from === undefined ? [{ path: "from", message: "is required" }] : []), ...(to === undefined ? [{ path: "to", message: "is required" }] : [])]);
      if (body.dry_run !== undefined && typeof body.dry_run !== "boolean") throw new ApiError(400, "dry_run must be true or false", [{ path: "dry_run", message: "must be a boolean" }]);
      const max = optionalInt(body, "max");
      const concurrency = optionalInt(body, "concurrency");
      return {
        body: await ops.backfillJob(ctx.deps, ctx.caller, ctx.params.name!, { from, to, ...(body.dry_run !== undefined ? { dryRun: body.dry_run as boolean } : {}), ...(max !== undefined ? { max } : {}), ...(concurrency !== undefined ? { concurrency } : {}) }),
      };
    },
  },
  {
    method: "GET", path: "/runs", role: "read", operationId: "listRuns", summary: "Run history, newest first",
    params: [
      { name: "job", in: "query", description: "Only this job (by name)", schema: { type: "string" } },
      { name: "status", in: "query", description: "Only this status", schema: { type: "string", enum: ops.RUN_STATUSES } },
      LIMIT(20, 1000),
    ],
    responses: { 200: ["The runs", "RunList"], 400: ["Bad query", "Error"] },
    handle: async ({ deps, query }) => {
      const status = query.get("status") || undefined;
      if (status !== undefined && !ops.RUN_STATUSES.includes(status as RunStatus)) {
        throw new ApiError(400, `query status must be one of ${ops.RUN_STATUSES.join(", ")} (got ${JSON.stringify(status)})`, [{ path: "status", message: `must be one of ${ops.RUN_STATUSES.join(", ")}` }]);
      }
      const job = query.get("job") || undefined;
      return { body: await ops.listRuns(deps, { limit: intParam(query, "limit", 20, 1, 1000), ...(job ? { job } : {}), ...(status ? { status: status as RunStatus } : {}) }) };
    },
  },
  {
    method: "GET", path: "/runs/{id}", role: "read", operationId: "getRun", summary: "One run record", params: [RUN_ID],
    responses: { 200: ["The run", "Run"], 404: ["No such run", "Error"] },
    handle: async ({ deps, params }) => ({ body: await ops.showRun(deps, params.id!) }),
  },
  {
    method: "POST", path: "/runs/{id}/retry", role: "operate", operationId: "retryRun", summary: "Re-run a finished occurrence (error, lost, missed, skipped) as its next attempt", params: [RUN_ID],
    responses: LIFECYCLE_RESPONSES,
    handle: async ({ deps, caller, params }) => ({ body: await ops.retryRun(deps, caller, params.id!) }),
  },
  {
    method: "GET", path: "/machines", role: "read", operationId: "listMachines", summary: "Agents in the fleet: serial, alive, last seen, clock offset",
    responses: { 200: ["The machines", "MachineList"] },
    handle: async ({ deps }) => ({ body: await ops.listMachines(deps) }),
  },
  {
    method: "GET", path: "/audit", role: "read", operationId: "listAudit", summary: "Who changed what, newest first (secret values masked)",
    params: [{ name: "job", in: "query", description: "Only this job (by name)", schema: { type: "string" } }, LIMIT(50, 1000)],
    responses: { 200: ["The audit log", "AuditList"], 400: ["Bad query", "Error"] },
    handle: async ({ deps, query }) => {
      const job = query.get("job") || undefined;
      return { body: await ops.listAudit(deps, { limit: intParam(query, "limit", 50, 1, 1000), ...(job ? { job } : {}) }) };
    },
  },
  {
    method: "GET", path: "/openapi.json", role: null, operationId: "openapi", summary: "This document (OpenAPI 3.1)",
    responses: { 200: ["The OpenAPI document", "OpenApiDocument"] },
    handle: async () => ({ body: buildOpenApi(ROUTES) }),
  },
];

interface Compiled {
  route: Route;
  pattern: RegExp;
  names: string[];
}

const COMPILED: Compiled[] = ROUTES.map((route) => {
  const names: string[] = [];
  const source = route.path.split("/").map((segment) => {
    const param = /^\{(\w+)\}$/.exec(segment);
    if (!param) return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    names.push(param[1]!);
    return "([^/]+)";
  });
  return { route, pattern: new RegExp(`^${source.join("/")}$`), names };
});

function match(path: string): { found: Compiled; params: Record<string, string> }[] {
  const matches: { found: Compiled; params: Record<string, string> }[] = [];
  for (const compiled of COMPILED) {
    const m = compiled.pattern.exec(path);
    if (!m) continue;
    try {
      matches.push({ found: compiled, params: Object.fromEntries(compiled.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])) });
    } catch {
      throw new ApiError(400, `the path ${JSON.stringify(path)} is not valid percent-encoding`);
    }
  }
  return matches;
}

/** Who is calling: a token's owner, or (no tokens configured) an anonymous reader. Throws 401/403. */
export async function authenticate(deps: ApiDeps, req: Request, info: RequestInfo, need: ApiRole): Promise<ops.Caller> {
  const tokens = deps.tokens();
  if (!tokens.configured) {
    if (need === "read") return { name: "anonymous", role: "read", via: "api" };
    throw new ApiError(401, `no api_tokens are configured, so no changes are accepted over HTTP; add to the config file: "api_tokens": {"NAME": {"token": "<at least 16 characters>", "role": "${need}"}}`, undefined, { "www-authenticate": 'Bearer realm="fleetcron"' });
  }
  const presented = bearerToken(req.headers.get("authorization"));
  if (presented === null) {
    throw new ApiError(401, `a token is needed: send "Authorization: Bearer <token>" with a token of role ${need} or higher`, undefined, { "www-authenticate": 'Bearer realm="fleetcron"' });
  }
  const delay = deps.throttle.delayFor(info.address, deps.clock.now());
  if (delay > 0) await deps.clock.sleep(delay);
  const principal = tokens.verify(presented);
  if (!principal) {
    deps.throttle.fail(info.address, deps.clock.now());
    deps.log.warn(`api: a wrong token from ${info.address} (${req.method} ${new URL(req.url).pathname})`);
    throw new ApiError(401, "the token is not one of api_tokens", undefined, { "www-authenticate": 'Bearer realm="fleetcron", error="invalid_token"' });
  }
  deps.throttle.succeed(info.address);
  if (!roleAllows(principal.role, need)) {
    throw new ApiError(403, `token "${principal.name}" has role ${principal.role}; this needs role ${need}`, undefined);
  }
  return { name: principal.name, role: principal.role, via: "api" };
}

async function readJson(req: Request): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY_BYTES) throw new ApiError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
  const text = await req.text();
  if (new TextEncoder().encode(text).length > MAX_BODY_BYTES) throw new ApiError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, `the body is not JSON: ${(error as Error).message}`, [{ path: "", message: "must be JSON" }]);
  }
}

/** Answers a request under /api/v1 (the caller checked the prefix). */
export async function handleApi(deps: ApiDeps, req: Request, info: RequestInfo): Promise<Response> {
  try {
    const url = new URL(req.url);
    const path = url.pathname.slice(API_PREFIX.length) || "/";
    const matches = match(path);
    if (matches.length === 0) throw new ApiError(404, `no such endpoint: ${req.method} ${url.pathname} (see ${API_PREFIX}/openapi.json)`);
    const method = req.method === "HEAD" ? "GET" : req.method;
    const chosen = matches.find((m) => m.found.route.method === method);
    if (!chosen) {
      const allow = [...new Set(matches.map((m) => m.found.route.method))].join(", ");
      throw new ApiError(405, `${req.method} is not served at ${url.pathname}; try ${allow}`, undefined, { allow });
    }
    const { route } = chosen.found;
    const caller = route.role === null ? { name: "anonymous", role: "read" as const, via: "api" as const } : await authenticate(deps, req, info, route.role);
    const result = await route.handle({ deps, params: chosen.params, query: url.searchParams, caller, body: () => readJson(req) });
    return json(result.status ?? 200, result.body, result.headers);
  } catch (error) {
    if (error instanceof ApiError || error instanceof FleetCronError) return errorResponse(error);
    deps.log.error(`api: ${req.method} ${new URL(req.url).pathname}: ${(error as Error)?.stack ?? error}`);
    return json(500, { error: "internal error; the agent's log has the details" });
  }
}
