import type { ApiRole } from "../config/schema.ts";
import { VERSION } from "../version.ts";

export interface ParamDoc {
  name: string;
  in: "path" | "query";
  description: string;
  schema: Record<string, unknown>;
  required?: boolean;
}

/** What the document says of one route (the router adds its handler). */
export interface RouteDoc {
  method: "GET" | "PUT" | "POST" | "DELETE";
  /** OpenAPI path template, relative to /api/v1. */
  path: string;
  /** null: open to anyone (the OpenAPI document). */
  role: ApiRole | null;
  operationId: string;
  summary: string;
  params?: ParamDoc[];
  /** `$ref` name under components/schemas of the request body, when there is one. */
  requestBody?: { schema: string; required: boolean };
  /** Status → [description, schema name]. */
  responses: Record<number, [string, string]>;
}

/**
 * The OpenAPI 3.1 document of /api/v1, built from the route table itself (src/api/router.ts), so
 * every route served is documented and every documented route is served.
 */

const str = { type: "string" } as const;
const nullableStr = { type: ["string", "null"] } as const;
const obj = (properties: Record<string, unknown>, required: string[] = [], extra = true) => ({ type: "object", properties, required, additionalProperties: extra });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const SCHEMAS: Record<string, unknown> = {
  Error: obj(
    {
      error: { ...str, description: "What is wrong and what would be valid" },
      code: { ...str, description: "FleetCron's error code, when the control layer refused" },
      problems: { type: "array", items: obj({ path: { ...str, description: "Field path in the document, e.g. actions[1].url" }, message: str }, ["path", "message"], false) },
    },
    ["error"],
  ),
  Problem: obj({ job: str, path: str, message: str }, ["path", "message"]),
  JobSummary: obj(
    {
      id: str,
      name: str,
      enabled: { type: "boolean" },
      valid: { type: "boolean" },
      schedule: str,
      tz: str,
      next_fire: { ...nullableStr, format: "date-time" },
      last_run: { oneOf: [{ type: "null" }, obj({ status: str, scheduled_for: str, machine_id: nullableStr, attempt: { type: "integer" }, error: nullableStr })] },
      problems: { type: "array", items: ref("Problem") },
      owner: nullableStr,
      owner_note: nullableStr,
    },
    ["id", "name", "enabled", "valid", "schedule", "tz", "next_fire", "last_run", "problems", "owner", "owner_note"],
  ),
  JobList: obj({ jobs: { type: "array", items: ref("JobSummary") } }, ["jobs"]),
  JobDetail: {
    allOf: [ref("JobSummary"), obj({ document: { type: "object", description: "The stored document; values under secret-like keys masked" }, recent_runs: { type: "array", items: ref("Run") } }, ["document", "recent_runs"])],
  },
  JobDocument: {
    type: "object",
    description: "A job document as in a jobs file (README, \"Job documents\"); `name` may be left out (the URL names it). Validated exactly as `fleetcron jobs apply`.",
    properties: { name: str },
    additionalProperties: true,
  },
  JobWrite: obj({ name: str, change: { type: "string", enum: ["created", "updated", "unchanged"] }, job: ref("JobDetail") }, ["name", "change", "job"]),
  JobDeleted: obj({ name: str, deleted: { type: "boolean" } }, ["name", "deleted"]),
  JobToggle: obj({ name: str, enabled: { type: "boolean" }, changed: { type: "boolean" } }, ["name", "enabled", "changed"]),
  Run: obj(
    {
      _id: str,
      run_id: str,
      job_id: str,
      job_name: str,
      scheduled_for: { ...str, format: "date-time" },
      attempt: { type: "integer" },
      trigger: str,
      status: { type: "string", enum: ["running", "success", "error", "skipped", "lost", "missed"] },
      machine_id: str,
      duration_ms: { type: "number" },
      error: str,
      reason: str,
      steps: { type: "array", items: { type: "object" } },
    },
    ["_id", "run_id", "job_id", "job_name", "scheduled_for", "attempt", "trigger", "status"],
  ),
  RunList: obj({ runs: { type: "array", items: ref("Run") } }, ["runs"]),
  TriggerResult: obj({ done: { type: "boolean", description: "false: the run is recorded and still running (poll its Location)" }, run: ref("Run") }, ["done", "run"]),
  Machine: obj({ machine_id: str, hostname: str, serial: { type: ["integer", "null"] }, status: str, alive: { type: "boolean" }, last_seen: str, version: str }, ["machine_id", "alive"]),
  MachineList: obj({ machines: { type: "array", items: ref("Machine") } }, ["machines"]),
  AuditEntry: obj(
    {
      id: str,
      at: { ...str, format: "date-time" },
      actor: { ...str, description: "Token name (API, page) or OS user@host (CLI, jobs_file)" },
      via: { type: "string", enum: ["cli", "api", "page", "jobs_file"] },
      action: str,
      job: nullableStr,
      job_id: nullableStr,
      run_id: nullableStr,
      note: nullableStr,
      before: { type: ["object", "null"] },
      after: { type: ["object", "null"] },
    },
    ["id", "at", "actor", "via", "action", "job"],
  ),
  AuditList: obj({ entries: { type: "array", items: ref("AuditEntry") } }, ["entries"]),
  PauseRequest: obj({ note: { ...str, description: "Why it is paused" }, until: { ...str, description: "ISO time or duration (e.g. 2h) after which it resumes by itself" } }, [], false),
  BackfillRequest: obj(
    {
      from: { ...str, format: "date-time" },
      to: { ...str, format: "date-time" },
      dry_run: { type: "boolean" },
      max: { type: "integer", minimum: 1 },
      concurrency: { type: "integer", minimum: 1 },
    },
    ["from", "to"],
    false,
  ),
  LifecycleResult: { type: "object", additionalProperties: true, description: "What the operation did (see `fleetcron jobs pause|resume|backfill`, `runs retry` --json)" },
  OpenApiDocument: { type: "object", additionalProperties: true },
};

export function buildOpenApi(routes: readonly RouteDoc[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, [description, schema]] of Object.entries(route.responses)) {
      responses[status] = { description, content: { "application/json": { schema: ref(schema) } } };
    }
    if (route.role !== null) {
      responses["401"] = { description: "No token, or a wrong one", content: { "application/json": { schema: ref("Error") } } };
      responses["403"] = { description: `The token's role is below ${route.role}`, content: { "application/json": { schema: ref("Error") } } };
    }
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      description: route.role === null ? "Open to anyone." : `Needs a token of role ${route.role} or higher (read < operate < admin).`,
      tags: [route.path.split("/")[1]!.replace(".json", "")],
      security: route.role === null ? [] : [{ bearer: [] }],
      responses,
      ...(route.params?.length ? { parameters: route.params.map((p) => ({ ...p, required: p.in === "path" ? true : (p.required ?? false) })) } : {}),
      ...(route.requestBody
        ? { requestBody: { required: route.requestBody.required, content: { "application/json": { schema: ref(route.requestBody.schema) } } } }
        : {}),
    };
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "FleetCron HTTP API",
      version: VERSION,
      description: "Operate a FleetCron fleet: every agent with `http_port` serves this API. Tokens and roles come from config `api_tokens`. Errors are `{ error, problems? }`.",
    },
    servers: [{ url: "/api/v1" }],
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "A token from config api_tokens" } },
      schemas: SCHEMAS,
    },
  };
}
