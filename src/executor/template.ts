/**
 * `{{NAME}}` templates in URLs, headers and bodies. Names are secrets (config `secrets` or
 * `FLEETCRON_SECRET_<KEY>`), built-ins, or results of earlier steps. An unknown name is an error,
 * never sent as literal text: a request with `{{API_SECRET}}` in its header is worse than no request.
 */

export const BUILTIN_NAMES = ["run_id", "scheduled_for", "job.name", "machine_id", "attempt"] as const;
/** Filled in for `on_failure` and `on_recovery` only: `{{failures}}`, the consecutive failed occurrences. */
export const NOTIFICATION_BUILTIN_NAMES = ["failures"] as const;

const TEMPLATE = /\{\{\s*([^{}]+?)\s*\}\}/g;
const STEP_REF = /^steps\.(.+?)\.(status|body|json)(?:\.(.+))?$/;

export interface StepOutput {
  status: number | null;
  body: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json?: unknown;
}

export interface TemplateContext {
  secrets: Record<string, string>;
  builtins: Record<(typeof BUILTIN_NAMES)[number], string> & Partial<Record<(typeof NOTIFICATION_BUILTIN_NAMES)[number], string>>;
  steps: Record<string, StepOutput>;
}

export class TemplateError extends Error {
  constructor(readonly templateName: string, message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** Every `{{name}}` used in a string, in order of appearance. */
export function templateNames(text: string): string[] {
  return [...text.matchAll(TEMPLATE)].map((m) => m[1]!);
}

/**
 * Why `name` cannot be resolved for a step, or null when it can. `stepsBefore` are the names of
 * the steps that run earlier in the same chain; referring to a later step is an error.
 */
export function checkTemplateName(name: string, secretKeys: Iterable<string>, stepsBefore: string[], extraBuiltins: readonly string[] = []): string | null {
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
  for (const key of secretKeys) if (key === name) return null;
  return `unknown template name {{${name}}}: not a secret (config "secrets" or FLEETCRON_SECRET_${name}) nor a built-in (${BUILTIN_NAMES.join(", ")})`;
}

function lookup(name: string, ctx: TemplateContext): string {
  // Own properties only: `{{toString}}` or `{{__proto__}}` must be unknown names, not Object.prototype.
  if (Object.hasOwn(ctx.builtins, name)) return ctx.builtins[name as keyof TemplateContext["builtins"]]!;
  const step = STEP_REF.exec(name);
  if (step) {
    const output = Object.hasOwn(ctx.steps, step[1]!) ? ctx.steps[step[1]!] : undefined;
    if (!output) throw new TemplateError(name, `{{${name}}}: step "${step[1]}" has not run`);
    if (step[2] === "status") return output.status === null ? "" : String(output.status);
    if (step[2] === "body") return output.body;
    let value: unknown = output.json;
    for (const key of step[3] ? step[3].split(".") : []) {
      value = value !== null && typeof value === "object" && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
    }
    if (value === undefined) throw new TemplateError(name, `{{${name}}}: step "${step[1]}" returned no such JSON value`);
    return typeof value === "string" ? value : JSON.stringify(value);
  }
  if (Object.hasOwn(ctx.secrets, name)) return ctx.secrets[name]!;
  throw new TemplateError(name, `unknown template name {{${name}}}`);
}

export function renderString(text: string, ctx: TemplateContext): string {
  return text.replace(TEMPLATE, (_, name: string) => lookup(name, ctx));
}

/** Renders every string inside a JSON-like value (object keys stay as written). */
export function renderValue(value: unknown, ctx: TemplateContext): unknown {
  if (typeof value === "string") return renderString(value, ctx);
  if (Array.isArray(value)) return value.map((v) => renderValue(v, ctx));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(v, ctx)]));
  }
  return value;
}

/** Every string found inside a JSON-like value, for validation. */
export function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(stringsIn);
  return [];
}
