/**
 * `{{NAME}}` templates in URLs, headers and bodies. Names are secrets (config `secrets` or
 * `FLEETCRON_SECRET_<KEY>`), vars (config `vars`), built-ins, or results of earlier steps. An
 * unknown name is an error, never sent as literal text: a request with `{{API_SECRET}}` in its
 * header is worse than no request.
 *
 * Trust (README, "Templates"): config values and built-ins are inserted as written. A step's
 * response is remote, untrusted text, so where it lands decides how it is inserted: percent-encoded
 * as a URI component in a URL (a `x&admin=1/../y` cannot add a parameter or climb the path), refused
 * in a header when it holds CR or LF (it cannot add a header), JSON-escaped in a string body (it
 * cannot close the string). `{{raw steps.NAME…}}` inserts it as written, on purpose.
 */

export const BUILTIN_NAMES = ["run_id", "scheduled_for", "job.name", "machine_id", "attempt"] as const;
/** Filled in for `on_failure` and `on_recovery` only: `{{failures}}`, the consecutive failed occurrences. */
export const NOTIFICATION_BUILTIN_NAMES = ["failures"] as const;

const TEMPLATE = /\{\{\s*([^{}]+?)\s*\}\}/g;
const STEP_REF = /^steps\.(.+?)\.(status|body|json)(?:\.(.+))?$/;
const RAW = /^raw\s+/;

export interface StepOutput {
  status: number | null;
  body: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json?: unknown;
}

export interface TemplateContext {
  secrets: Record<string, string>;
  /** Config `vars`: trusted like secrets, but shown unmasked. */
  vars?: Record<string, string>;
  builtins: Record<(typeof BUILTIN_NAMES)[number], string> & Partial<Record<(typeof NOTIFICATION_BUILTIN_NAMES)[number], string>>;
  steps: Record<string, StepOutput>;
}

/**
 * Where a template is rendered, which decides how untrusted values are inserted:
 * `url` percent-encodes them, `header` refuses CR/LF, `body` (a string body) JSON-escapes them,
 * `json` (a string inside an object body, escaped by JSON.stringify later) and `text` insert them as is.
 */
export type TemplateSlot = "url" | "header" | "body" | "json" | "text";

/** One name filled in, for callers that must know where values came from (masking, secret hosts). */
export interface TemplateUse {
  name: string;
  source: "secret" | "var" | "builtin" | "step";
  /** The value as inserted (after encoding). */
  value: string;
}

export class TemplateError extends Error {
  constructor(readonly templateName: string, message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** Every `{{name}}` used in a string, in order of appearance (with a `raw ` prefix, if written). */
export function templateNames(text: string): string[] {
  return [...text.matchAll(TEMPLATE)].map((m) => m[1]!);
}

/** `raw steps.a.body` → `steps.a.body`. */
export function withoutRaw(name: string): string {
  return name.replace(RAW, "");
}

/**
 * Why `name` cannot be resolved for a step, or null when it can. `stepsBefore` are the names of
 * the steps that run earlier in the same chain; referring to a later step is an error.
 * `trustedKeys` are the config's secret and var names.
 */
export function checkTemplateName(name: string, trustedKeys: Iterable<string>, stepsBefore: string[], extraBuiltins: readonly string[] = []): string | null {
  if (RAW.test(name)) {
    const inner = withoutRaw(name);
    if (!inner.startsWith("steps.")) return `{{${name}}}: "raw" applies only to step outputs ({{raw steps.NAME.body}}); config values and built-ins are always inserted as written`;
    return checkTemplateName(inner, trustedKeys, stepsBefore, extraBuiltins);
  }
  if ((BUILTIN_NAMES as readonly string[]).includes(name) || extraBuiltins.includes(name)) return null;
  if ((NOTIFICATION_BUILTIN_NAMES as readonly string[]).includes(name)) return `{{${name}}} is filled in only in on_failure and on_recovery steps`;
  const step = STEP_REF.exec(name);
  if (step) {
    if (stepsBefore.includes(step[1]!)) return null;
    return `{{${name}}} refers to step "${step[1]}", which does not run before this one (earlier steps: ${stepsBefore.length ? stepsBefore.map((s) => `"${s}"`).join(", ") : "none"})`;
  }
  if (name.startsWith("steps.")) {
    return `{{${name}}} is not a step reference; use steps.NAME.status, steps.NAME.body or steps.NAME.json.PATH`;
  }
  for (const key of trustedKeys) if (key === name) return null;
  return `unknown template name {{${name}}}: not a secret (config "secrets" or FLEETCRON_SECRET_${name}), a var (config "vars") nor a built-in (${BUILTIN_NAMES.join(", ")})`;
}

function lookup(name: string, ctx: TemplateContext): { value: string; source: TemplateUse["source"] } {
  // Own properties only: `{{toString}}` or `{{__proto__}}` must be unknown names, not Object.prototype.
  if (Object.hasOwn(ctx.builtins, name)) return { value: ctx.builtins[name as keyof TemplateContext["builtins"]]!, source: "builtin" };
  const step = STEP_REF.exec(name);
  if (step) {
    const output = Object.hasOwn(ctx.steps, step[1]!) ? ctx.steps[step[1]!] : undefined;
    if (!output) throw new TemplateError(name, `{{${name}}}: step "${step[1]}" has not run`);
    if (step[2] === "status") return { value: output.status === null ? "" : String(output.status), source: "step" };
    if (step[2] === "body") return { value: output.body, source: "step" };
    let value: unknown = output.json;
    for (const key of step[3] ? step[3].split(".") : []) {
      value = value !== null && typeof value === "object" && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
    }
    if (value === undefined) throw new TemplateError(name, `{{${name}}}: step "${step[1]}" returned no such JSON value`);
    return { value: typeof value === "string" ? value : JSON.stringify(value), source: "step" };
  }
  if (Object.hasOwn(ctx.secrets, name)) return { value: ctx.secrets[name]!, source: "secret" };
  if (ctx.vars && Object.hasOwn(ctx.vars, name)) return { value: ctx.vars[name]!, source: "var" };
  throw new TemplateError(name, `unknown template name {{${name}}}`);
}

function insert(name: string, value: string, source: TemplateUse["source"], raw: boolean, slot: TemplateSlot): string {
  if (slot === "header" && /[\r\n]/.test(value)) {
    // Named, never shown: the value may be a secret or a hostile response.
    throw new TemplateError(name, `{{${name}}} holds a CR or LF, which a header value cannot carry (it would start a header of its own); refused, nothing was sent`);
  }
  if (source !== "step" || raw) return value;
  if (slot === "url") return encodeURIComponent(value);
  if (slot === "body") return JSON.stringify(value).slice(1, -1);
  return value;
}

export function renderString(text: string, ctx: TemplateContext, slot: TemplateSlot = "text", uses?: TemplateUse[]): string {
  return text.replace(TEMPLATE, (_, written: string) => {
    const raw = RAW.test(written);
    const name = withoutRaw(written);
    const { value, source } = lookup(name, ctx);
    const inserted = insert(name, value, source, raw, slot);
    uses?.push({ name, source, value: inserted });
    return inserted;
  });
}

/** Renders every string inside a JSON-like value (object keys stay as written). */
export function renderValue(value: unknown, ctx: TemplateContext, uses?: TemplateUse[]): unknown {
  if (typeof value === "string") return renderString(value, ctx, "json", uses);
  if (Array.isArray(value)) return value.map((v) => renderValue(v, ctx, uses));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(v, ctx, uses)]));
  }
  return value;
}

/** A request body: a string body JSON-escapes untrusted values; an object body is escaped by JSON.stringify. */
export function renderBody(value: unknown, ctx: TemplateContext, uses?: TemplateUse[]): unknown {
  return typeof value === "string" ? renderString(value, ctx, "body", uses) : renderValue(value, ctx, uses);
}

/** Every string found inside a JSON-like value, for validation. */
export function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(stringsIn);
  return [];
}
