/**
 * Job documents → `Job`. Accepts the seed's documents exactly as users wrote them into MongoDB
 * (single request or `actions`, `hour`/`minute`) plus FleetCron's additions, and reports every
 * problem of a document at once, each with its field path and what would be valid.
 *
 * Checks run in three layers over the raw document, so a type error in one field never hides a
 * template error in another: value guards (size, depth, `$` keys), the valibot schema (one field at
 * a time), then relations between fields (one schedule, one request form, step names, templates).
 * Only a document with no problem at all is normalised.
 */
import * as v from "valibot";
import {
  describeValue,
  isPlainObject,
  issuesToProblems,
  joinPath,
  notArray,
  unknownKeyHint,
  type PathProblem,
} from "../config/issues.ts";
import { hasControlCharacters, printable } from "../core/printable.ts";
import { hostAllowed, type SecretScope } from "../executor/secret-hosts.ts";
import { BUILTIN_NAMES, checkTemplateName, NOTIFICATION_BUILTIN_NAMES, templateNames, withoutRaw } from "../executor/template.ts";
import { AT_HELP, parseAt } from "../schedule/at.ts";
import { parseCron } from "../schedule/cron.ts";
import { parseEvery } from "../schedule/every.ts";
import { isValidTimeZone } from "../schedule/zone.ts";
import { UNREADABLE_FIELD } from "../store/unreadable.ts";
import type { HttpAction, Job, Pause, RetryPolicy, Schedule, ValidationProblem, When } from "./types.ts";

export const JOB_DEFAULTS = {
  /** The seed always writes `enabled`; a job written without it was meant to run. */
  enabled: true,
  method: "GET",
  timeout_sec: 30,
  // The seed promised "retry policies with exponential backoff": its `{retries, delay_sec}` doubles.
  retry: { retries: 0, delay_sec: 5, backoff: 2, max_delay_sec: 300, jitter: 0 } satisfies RetryPolicy,
  continue_on_failure: false,
  overlap: "skip",
  catchup: "last",
  on_lost: "rerun",
} as const;

export const JOB_LIMITS = {
  /** Containers deeper than this are refused: deeper bodies are mistakes, and recursion must stay bounded. */
  maxDepth: 20,
  maxStringBytes: 64 * 1024,
  maxSteps: 100,
  maxNameLength: 200,
} as const;

// ── field schemas: each message says what would be valid; "(got …)" is added when reported ──

const int = (min: number, max: number, message = `must be an integer ${min}-${max}`) =>
  v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message));
const num = (min: number, max: number, message: string) =>
  v.pipe(v.number(message), v.finite(message), v.minValue(min, message), v.maxValue(max, message));
const picklist = <T extends readonly string[]>(options: T) =>
  v.picklist(options, `must be one of ${options.map((o) => `"${o}"`).join(", ")}`);
const list = <T extends v.GenericSchema>(item: T, message: string) => v.array(item, message);

const DAY_SEC = 86_400;
/**
 * The longest `every` and `alert_after_sec`: a year and a day. Longer ones are typos, and bounded
 * durations keep every computed instant (next fire, alert deadline) far inside the range a Date
 * can hold (`"every": "104000000d"` once broke jobs list, status and the page).
 */
const MAX_PERIOD_SEC = 366 * DAY_SEC;
/** Names are echoed to terminals and logs: a newline could forge a line, an ESC rewrite the screen. */
const CONTROL_MESSAGE = "must not contain control characters (newline, tab, ESC, bidi overrides, …)";
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const LEADING_TEMPLATE = /^\s*\{\{/;
const ANY_TEMPLATE = /\{\{[^{}]*\}\}/g;

/** A URL may start with a template (`{{BASE_URL}}/report`); otherwise it must be http(s) as written. */
function isPlausibleUrl(url: string): boolean {
  if (LEADING_TEMPLATE.test(url)) return true;
  try {
    return ["http:", "https:"].includes(new URL(url.replace(ANY_TEMPLATE, "x")).protocol);
  } catch {
    return false;
  }
}

function cronError(expression: unknown): string | null {
  try {
    parseCron(String(expression));
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

const STEP_NAME_MESSAGE = `must be a non-empty name (at most ${JOB_LIMITS.maxNameLength} characters)`;
const stepName = v.pipe(
  v.string(STEP_NAME_MESSAGE),
  v.regex(/\S/, STEP_NAME_MESSAGE),
  v.maxLength(JOB_LIMITS.maxNameLength, STEP_NAME_MESSAGE),
  v.check((name) => !hasControlCharacters(name), CONTROL_MESSAGE),
);

const JOB_NAME_MESSAGE = `must be a non-empty name without leading or trailing spaces (at most ${JOB_LIMITS.maxNameLength} characters)`;
const jobName = v.pipe(
  v.string(JOB_NAME_MESSAGE),
  v.check((name) => !hasControlCharacters(name), CONTROL_MESSAGE),
  v.regex(/^\S(.*\S)?$/s, JOB_NAME_MESSAGE),
  v.maxLength(JOB_LIMITS.maxNameLength, JOB_NAME_MESSAGE),
);

/** The methods an HTTP job may use (RFC 9110 plus PATCH); CONNECT opens a tunnel, not a request. */
const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];
const METHOD_MESSAGE = `must be an HTTP method: ${HTTP_METHODS.join(", ")}`;
const URL_MESSAGE = "must be an http:// or https:// URL (it may start with a template such as {{BASE_URL}})";
const STATUS_MESSAGE = "must be an HTTP status 100-599 or a list of them";
const OBJECT_OF = (what: string) => `must be an object of ${what}`;

const status = int(100, 599, STATUS_MESSAGE);
const AUTH_MESSAGE = 'must be { "type": "oauth2_client_credentials", "token_url", "client_id", "client_secret", "scope"?, "audience"?, "client_auth"?: "basic" | "body" }';

const requestEntries = {
  method: v.nullish(v.pipe(v.string(METHOD_MESSAGE), v.check((m) => HTTP_METHODS.includes(m.toUpperCase()), (issue) => `${METHOD_MESSAGE} (got ${JSON.stringify(issue.input)})`))),
  headers: v.nullish(
    notArray(
      v.record(
        v.pipe(v.string(), v.regex(HEADER_NAME, "must be a valid header name (letters, digits and !#$%&'*+-.^_`|~)")),
        v.string("must be a string (header values are text; quote numbers)"),
        OBJECT_OF("header names to strings"),
      ),
      OBJECT_OF("header names to strings"),
    ),
  ),
  /** A string is sent as is; anything else as JSON. */
  body: v.optional(v.unknown()),
  timeout_sec: v.nullish(
    v.pipe(
      num(0, DAY_SEC, `must be a number of seconds greater than 0, at most ${DAY_SEC}`),
      v.gtValue(0, `must be a number of seconds greater than 0, at most ${DAY_SEC}`),
    ),
  ),
  retry: v.nullish(
    notArray(
      v.object(
        {
          retries: v.nullish(int(0, 100, "must be an integer 0-100 (extra attempts after the first)")),
          delay_sec: v.nullish(num(0, DAY_SEC, `must be a number of seconds 0-${DAY_SEC}`)),
          backoff: v.nullish(num(1, 100, "must be a factor 1-100 (1 = the same delay every time, 2 = doubling)")),
          max_delay_sec: v.nullish(num(0, DAY_SEC, `must be a number of seconds 0-${DAY_SEC}`)),
          jitter: v.nullish(num(0, 1, "must be a fraction 0-1 of the delay added or removed at random")),
        },
        OBJECT_OF("retry settings: retries, delay_sec, backoff, max_delay_sec, jitter"),
      ),
      OBJECT_OF("retry settings: retries, delay_sec, backoff, max_delay_sec, jitter"),
    ),
  ),
  expect_status: v.nullish(v.union([status, list(status, STATUS_MESSAGE)], STATUS_MESSAGE)),
  sign: v.nullish(v.boolean("must be true or false (false: send without FleetCron-Signature)")),
  follow_redirects: v.nullish(picklist(["same-origin", "any", "none"] as const)),
  record_response: v.nullish(v.boolean("must be true or false (false: the response body is never stored)")),
  auth: v.nullish(
    notArray(
      v.object(
        {
          type: v.literal("oauth2_client_credentials", 'must be "oauth2_client_credentials" (the only auth type)'),
          token_url: v.pipe(v.string(URL_MESSAGE), v.check(isPlausibleUrl, URL_MESSAGE)),
          client_id: v.pipe(v.string("must be a non-empty string"), v.minLength(1, "must be a non-empty string")),
          client_secret: v.pipe(v.string("must be a non-empty string (usually a template such as {{CLIENT_SECRET}})"), v.minLength(1, "must be a non-empty string")),
          scope: v.nullish(v.string("must be a string of space-separated scopes")),
          audience: v.nullish(v.string("must be a string")),
          client_auth: v.nullish(picklist(["basic", "body"] as const)),
        },
        AUTH_MESSAGE,
      ),
      AUTH_MESSAGE,
    ),
  ),
};

/** `values` names the allowed items for messages, e.g. "hours 0-23". */
const whenList = (min: number, max: number, values: string) =>
  v.nullish(
    v.pipe(
      list(int(min, max, `must be one of the ${values}`), `must be a list of ${values}`),
      v.minLength(1, `must list at least one of the ${values} (an empty list never matches)`),
    ),
  );

const WHEN_MESSAGE = OBJECT_OF("conditions: hour_in, minute_in, weekday_in, day_in, month_in");
const whenSchema = notArray(
  v.object(
    {
      hour_in: whenList(0, 23, "hours 0-23"),
      minute_in: whenList(0, 59, "minutes 0-59"),
      weekday_in: whenList(0, 7, "weekdays 0-7 (0 and 7 = Sunday)"),
      day_in: whenList(1, 31, "days of the month 1-31"),
      month_in: whenList(1, 12, "months 1-12"),
    },
    WHEN_MESSAGE,
  ),
  WHEN_MESSAGE,
);

const ACTION_MESSAGE = "must be an action object with at least a url";
const actionEntries = {
  type: v.nullish(v.literal("http", 'must be "http" (the only action type)')),
  name: v.nullish(stepName),
  description: v.nullish(v.string("must be a string")),
  ...requestEntries,
  url: v.pipe(v.string(URL_MESSAGE), v.check(isPlausibleUrl, URL_MESSAGE)),
  when: v.nullish(whenSchema),
  continue_on_failure: v.nullish(v.boolean("must be true or false")),
};
const actionSchema = notArray(v.object(actionEntries, ACTION_MESSAGE), ACTION_MESSAGE);

const steps = (least: number) =>
  v.nullish(
    v.pipe(
      list(actionSchema, "must be a list of actions"),
      v.minLength(least, "must list at least one action"),
      v.maxLength(JOB_LIMITS.maxSteps, `must list at most ${JOB_LIMITS.maxSteps} actions`),
    ),
  );

const jobEntries = {
  /** Identity belongs to the store; the caller passes it in the context. */
  _id: v.optional(v.any()),
  name: jobName,
  /** Free text: JSON has no comments, and jobs files deserve explanations. */
  description: v.nullish(v.string("must be a string")),
  enabled: v.nullish(v.boolean("must be true or false")),
  hour: v.optional(v.nullable(int(0, 23, "must be an integer 0-23, or null for every hour"))),
  minute: v.nullish(int(0, 59)),
  cron: v.nullish(
    v.pipe(
      v.string('must be a cron expression such as "*/15 * * * *"'),
      v.check((text) => cronError(text) === null, (issue) => cronError(issue.input) ?? "must be a cron expression"),
    ),
  ),
  every: v.nullish(
    v.pipe(
      v.string('must be an interval such as "30s", "5m", "1h30m" or "1d"'),
      v.check((text) => parseEvery(text) !== null, 'must be an interval such as "30s", "5m", "1h30m" or "1d" (at least 1s)'),
      v.check((text) => parseEvery(text)! <= MAX_PERIOD_SEC * 1000, `must be at most ${MAX_PERIOD_SEC / DAY_SEC}d (for rarer jobs use cron)`),
    ),
  ),
  at: v.nullish(
    v.pipe(
      v.string(AT_HELP),
      v.check((text) => parseAt(text) !== null, AT_HELP),
    ),
  ),
  tz: v.nullish(
    v.pipe(
      v.string('must be an IANA time zone such as "Asia/Seoul" or "UTC"'),
      v.check(isValidTimeZone, 'must be an IANA time zone such as "Asia/Seoul" or "UTC"'),
    ),
  ),
  ...requestEntries,
  url: v.nullish(v.pipe(v.string(URL_MESSAGE), v.check(isPlausibleUrl, URL_MESSAGE))),
  actions: steps(1),
  overlap: v.nullish(picklist(["skip", "allow"] as const)),
  catchup: v.nullish(picklist(["skip", "last", "all"] as const)),
  on_lost: v.nullish(picklist(["rerun", "skip"] as const)),
  on_success: steps(0),
  on_failure: steps(0),
  deadline_sec: v.nullish(
    v.pipe(
      num(0, DAY_SEC, `must be a number of seconds greater than 0, at most ${DAY_SEC}`),
      v.gtValue(0, `must be a number of seconds greater than 0, at most ${DAY_SEC}`),
    ),
  ),
  notify_after_failures: v.nullish(int(1, 1000, "must be a whole number of consecutive failures 1-1000 (1 = notify on every failure)")),
  on_recovery: steps(0),
  /** Kept by `jobs pause` (see BOOKKEEPING_KEYS); read as written by FleetCron. */
  paused: v.nullish(
    v.object(
      {
        note: v.nullish(v.string("must be a string")),
        by: v.string("must be the user@host who paused the job"),
        at: v.pipe(v.string("must be an ISO time"), v.check((t) => Number.isFinite(Date.parse(t)), "must be an ISO time")),
        until: v.nullish(v.pipe(v.string("must be an ISO time"), v.check((t) => Number.isFinite(Date.parse(t)), "must be an ISO time"))),
      },
      "must be the pause state written by `fleetcron jobs pause`",
    ),
  ),
  alert_after_sec: v.nullish(
    v.pipe(
      v.number(`must be a number of seconds greater than 0, at most ${MAX_PERIOD_SEC} (366 days)`),
      v.finite(`must be a number of seconds greater than 0, at most ${MAX_PERIOD_SEC} (366 days)`),
      v.gtValue(0, `must be a number of seconds greater than 0, at most ${MAX_PERIOD_SEC} (366 days)`),
      v.maxValue(MAX_PERIOD_SEC, `must be a number of seconds greater than 0, at most ${MAX_PERIOD_SEC} (366 days)`),
    ),
  ),
  max_parallel: v.nullish(int(1, 10_000, "must be an integer 1-10000: how many attempts of this job may run at once on one agent (overlap: allow)")),
  jitter_sec: v.nullish(num(0, 3600, "must be a number of seconds 0-3600: each occurrence fires up to this long after its instant")),
  limit: v.nullish(
    v.pipe(
      v.string('must be the name of a config `limits` entry, e.g. "partner-api"'),
      v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be the name of a config `limits` entry: letters, digits, "_", "." or "-", e.g. "partner-api"'),
    ),
  ),
  run_on: v.nullish(
    notArray(
      v.record(v.string(), v.string('must be a string (tags are text, e.g. "eu")'), 'must be an object of tag names to values, e.g. {"region": "eu"}'),
      'must be an object of tag names to values, e.g. {"region": "eu"}',
    ),
  ),
};
const JOB_MESSAGE = "must be a job document (a JSON object)";
const jobSchema = notArray(v.object(jobEntries, JOB_MESSAGE), JOB_MESSAGE);

type JobFields = v.InferOutput<typeof jobSchema>;
type ActionFields = v.InferOutput<typeof actionSchema>;
type RequestFields = Partial<Pick<ActionFields, keyof typeof requestEntries>>;

/** Kept by FleetCron on stored jobs; an exported document carrying them re-applies cleanly. */
const BOOKKEEPING_KEYS = new Set(["created_at", "updated_at", "paused"]);
/** The keys a jobs file may set (`paused` is state written by `jobs pause`, not configuration). */
export const JOB_KEYS = Object.keys(jobEntries).filter((key) => !BOOKKEEPING_KEYS.has(key));
export const ACTION_KEYS = Object.keys(actionEntries);
const AUTH_KEYS = ["type", "token_url", "client_id", "client_secret", "scope", "audience", "client_auth"];
const RETRY_KEYS = ["retries", "delay_sec", "backoff", "max_delay_sec", "jitter"];
const WHEN_KEYS = ["hour_in", "minute_in", "weekday_in", "day_in", "month_in"];
/** In the `actions` form, these job-level fields are defaults for every action (not for on_success/on_failure). */
const INHERITED_KEYS = ["method", "headers", "body", "timeout_sec", "retry", "expect_status"] as const;
const CHAINS = ["actions", "on_success", "on_failure", "on_recovery"] as const;
type Chain = (typeof CHAINS)[number];

// ── entry point ──

export interface JobParseContext {
  /** Secret names available to templates (config `secrets` and `FLEETCRON_SECRET_*`). */
  secretKeys: readonly string[];
  /** Names the job in problems when it has no usable name: `#3` in a file, the id in the store. */
  label?: string;
  /** The store id; `_id` in the document is never read. */
  id?: string;
  /** Report unknown keys (files: a typo like `timeout` must not pass silently). Stored documents may carry extra keys. */
  strictKeys?: boolean;
  /**
   * The config's values and secret hosts: with them, a job that would send a secret to a host its
   * `hosts` do not allow is refused (README, "Secret hosts"). Without them only names are checked.
   */
  secretScope?: SecretScope;
}


export type JobParseResult = { ok: true; job: Job } | { ok: false; problems: ValidationProblem[] };

/**
 * Never throws: whatever one document holds (or a store could not read of it) is that document's
 * problem, reported against it, and the other jobs go on (README, "Security").
 */
export function parseJobDocument(doc: unknown, ctx: JobParseContext): JobParseResult {
  const job = jobLabel(doc, ctx.label);
  const unreadable = isPlainObject(doc) ? doc[UNREADABLE_FIELD] : undefined;
  if (typeof unreadable === "string") {
    return { ok: false, problems: [{ job, path: "", message: `the stored document cannot be read (${unreadable}); fix or delete the document (id ${printable(String(ctx.id ?? (doc as { _id?: unknown })._id ?? "?"))})` }] };
  }
  try {
    const checked = checkDocument(doc, ctx);
    if (!checked.fields) return { ok: false, problems: dedupe(checked.problems).map((p) => ({ job, ...p })) };
    return { ok: true, job: toJob(checked.fields, ctx.id ?? "") };
  } catch (error) {
    return { ok: false, problems: [{ job, path: "", message: `could not be checked (${(error as Error)?.message ?? String(error)}); fix or delete it` }] };
  }
}

/** The job's name if it has a usable one (control characters escaped: it is printed), else the caller's label. */
export function jobLabel(doc: unknown, label = "#?"): string {
  const name = isPlainObject(doc) ? doc.name : undefined;
  return typeof name === "string" && name.trim() !== "" ? printable(name) : label;
}

/** The schema's output when the document has no problem at all, else every problem found. */
function checkDocument(doc: unknown, ctx: JobParseContext): { fields?: JobFields; problems: PathProblem[] } {
  if (!isPlainObject(doc)) return { problems: [{ path: "", message: `${JOB_MESSAGE} (got ${describeValue(doc)})` }] };
  const result = v.safeParse(jobSchema, doc, { abortPipeEarly: true });
  const problems = [
    ...guardProblems(doc),
    ...(ctx.strictKeys ? unknownKeyProblems(doc) : []),
    ...(result.success ? [] : issuesToProblems(result.issues)),
    ...scheduleProblems(doc),
    ...formProblems(doc),
    ...concurrencyProblems(doc),
    ...stepProblems(doc, ctx.secretKeys, ctx.secretScope),
  ];
  return problems.length === 0 && result.success ? { fields: result.output, problems } : { problems };
}

function dedupe(problems: PathProblem[]): PathProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

// ── value guards: what would make a document expensive or dangerous to handle ──

interface Visitor {
  string?(text: string, path: string): void;
  key?(key: string, path: string): void;
  tooDeep?(path: string): void;
  /** An array whose item at `path` is itself an array. */
  nestedArray?(path: string): void;
}

/** Visits every string and key inside a JSON-like value, never deeper than `maxDepth` (no stack risk). */
function walk(value: unknown, path: string, depth: number, visit: Visitor): void {
  if (typeof value === "string") return visit.string?.(value, path);
  if (value === null || typeof value !== "object") return;
  if (depth > JOB_LIMITS.maxDepth) return visit.tooDeep?.(path);
  if (Array.isArray(value)) {
    return value.forEach((item, i) => {
      if (Array.isArray(item)) visit.nestedArray?.(joinPath(path, i));
      walk(item, joinPath(path, i), depth + 1, visit);
    });
  }
  // Only plain data: BSON values (ObjectId, Date) read from a store are leaves.
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return;
  for (const [key, item] of Object.entries(value)) {
    const itemPath = joinPath(path, key);
    visit.key?.(key, itemPath);
    walk(item, itemPath, depth + 1, visit);
  }
}

function guardProblems(doc: Record<string, unknown>): PathProblem[] {
  const problems: PathProblem[] = [];
  const { _id, ...rest } = doc;
  walk(rest, "", 0, {
    key(key, path) {
      if (key.startsWith("$")) problems.push({ path, message: `keys starting with "$" are not allowed (MongoDB reads them as operators); rename "${key}"` });
      else if (key.includes(".")) problems.push({ path, message: `keys containing "." cannot be stored (MongoDB-compatible stores read them as paths; FerretDB refuses them); rename "${key}"` });
    },
    nestedArray(path) {
      problems.push({ path, message: "is an array inside an array, which FerretDB cannot store; wrap the inner array in an object (e.g. {\"items\": [...]})" });
    },
    string(text, path) {
      // Cheap length test first: only long strings can exceed the byte limit.
      if (text.length * 3 <= JOB_LIMITS.maxStringBytes) return;
      const bytes = Buffer.byteLength(text, "utf8");
      if (bytes > JOB_LIMITS.maxStringBytes) problems.push({ path, message: `is ${Math.ceil(bytes / 1024)} KiB; strings are limited to 64 KiB` });
    },
    tooDeep(path) {
      problems.push({ path, message: `is nested more than ${JOB_LIMITS.maxDepth} levels deep; flatten it` });
    },
  });
  return problems;
}

function unknownKeyProblems(doc: Record<string, unknown>): PathProblem[] {
  const userKeys = Object.fromEntries(Object.entries(doc).filter(([key]) => !BOOKKEEPING_KEYS.has(key)));
  const problems = unknownIn(userKeys, "", JOB_KEYS, "job");
  const nested = (obj: unknown, base: string) => {
    if (!isPlainObject(obj)) return;
    if (isPlainObject(obj.retry)) problems.push(...unknownIn(obj.retry, joinPath(base, "retry"), RETRY_KEYS, "retry"));
    if (isPlainObject(obj.when)) problems.push(...unknownIn(obj.when, joinPath(base, "when"), WHEN_KEYS, "when"));
    if (isPlainObject(obj.auth)) problems.push(...unknownIn(obj.auth, joinPath(base, "auth"), AUTH_KEYS, "auth"));
  };
  nested(doc, "");
  for (const chain of CHAINS) {
    const items = doc[chain];
    if (!Array.isArray(items)) continue;
    items.forEach((item, i) => {
      if (!isPlainObject(item)) return;
      problems.push(...unknownIn(item, joinPath(chain, i), ACTION_KEYS, "action"));
      nested(item, joinPath(chain, i));
    });
  }
  return problems;
}

function unknownIn(obj: Record<string, unknown>, base: string, known: readonly string[], what: string): PathProblem[] {
  return Object.keys(obj)
    .filter((key) => !known.includes(key))
    .map((key) => ({ path: joinPath(base, key), message: `is not a known ${what} key (${unknownKeyHint(key, known)})` }));
}

// ── relations between fields (read defensively: wrong types were reported by the schema) ──

const present = (value: unknown) => value !== undefined && value !== null;

const SCHEDULE_HELP = 'give exactly one of cron ("0 9 * * *"), every ("30s"), at ("2026-12-24T18:00", once) or minute (with hour 0-23, or null for every hour)';

function scheduleProblems(doc: Record<string, unknown>): PathProblem[] {
  const forms = [
    present(doc.cron) && "cron",
    present(doc.every) && "every",
    present(doc.at) && "at",
    (present(doc.minute) || present(doc.hour)) && "minute/hour",
  ].filter((f): f is string => typeof f === "string");
  if (forms.length === 0) return [{ path: "", message: `has no schedule; ${SCHEDULE_HELP}` }];
  if (forms.length > 1) return [{ path: "", message: `has several schedules (${forms.join(", ")}), which are mutually exclusive; ${SCHEDULE_HELP}` }];
  if (present(doc.hour) && !present(doc.minute)) return [{ path: "minute", message: "is required with hour (an integer 0-59)" }];
  return [];
}

function concurrencyProblems(doc: Record<string, unknown>): PathProblem[] {
  if (typeof doc.max_parallel === "number" && doc.max_parallel > 1 && doc.overlap !== "allow") {
    return [{ path: "max_parallel", message: 'has no effect with overlap: skip (one attempt at a time); set "overlap": "allow" to run several at once' }];
  }
  return [];
}

function formProblems(doc: Record<string, unknown>): PathProblem[] {
  if (present(doc.url) && present(doc.actions)) {
    return [{ path: "url", message: "cannot be used together with actions: give each action its own url (job-level method, headers, body, timeout_sec, retry and expect_status are defaults for every action)" }];
  }
  if (!present(doc.url) && !present(doc.actions)) {
    return [{ path: "", message: "has no request: give url (a single request) or actions (a list of steps)" }];
  }
  if (!present(doc.url)) return [];
  // The single-request form: action-only keys at job level would be silently meaningless.
  return (["when", "continue_on_failure"] as const)
    .filter((key) => present(doc[key]))
    .map((key) => ({ path: key, message: "belongs to an action; it has no meaning for a single-request job (use actions)" }));
}

/** One step as written: where it sits in the document and which values it reads templates from. */
interface StepSource {
  chain: Chain;
  path: string;
  name: string;
  /** `path` of the step whose fields these are; inherited job-level fields carry their own path. */
  templated: { path: string; value: unknown; inherited: boolean }[];
}

function defaultStepName(chain: Chain, index: number): string {
  return chain === "actions" ? `step${index + 1}` : `${chain}${index + 1}`;
}

function stepSources(doc: Record<string, unknown>): StepSource[] {
  const sources: StepSource[] = [];
  const own = (obj: Record<string, unknown>, base: string) =>
    (["url", "headers", "body", "auth"] as const).filter((k) => k in obj).map((k) => ({ path: joinPath(base, k), value: obj[k], inherited: false }));
  if (!present(doc.actions)) {
    // A missing or bad name is reported by the schema; the request's templates are still checked.
    sources.push({ chain: "actions", path: "", name: typeof doc.name === "string" ? doc.name : "", templated: own(doc, "") });
  }
  for (const chain of CHAINS) {
    const items = doc[chain];
    if (!Array.isArray(items)) continue;
    items.forEach((item, i) => {
      if (!isPlainObject(item)) return;
      const path = joinPath(chain, i);
      const name = typeof item.name === "string" ? item.name : defaultStepName(chain, i);
      const templated = own(item, path);
      if (chain === "actions") templated.push(...inheritedSources(doc, item));
      sources.push({ chain, path, name, templated });
    });
  }
  return sources;
}

/** Job-level headers and body that an action does not override, checked in that action's place. */
function inheritedSources(doc: Record<string, unknown>, action: Record<string, unknown>): StepSource["templated"] {
  const sources: StepSource["templated"] = [];
  if (isPlainObject(doc.headers)) {
    const overridden = new Set(isPlainObject(action.headers) ? Object.keys(action.headers).map((k) => k.toLowerCase()) : []);
    for (const [key, value] of Object.entries(doc.headers)) {
      if (!overridden.has(key.toLowerCase())) sources.push({ path: joinPath("headers", key), value, inherited: true });
    }
  }
  if ("body" in doc && !("body" in action)) sources.push({ path: "body", value: doc.body, inherited: true });
  if ("auth" in doc && !("auth" in action)) sources.push({ path: "auth", value: doc.auth, inherited: true });
  return sources;
}

function stepProblems(doc: Record<string, unknown>, secretKeys: readonly string[], scope?: SecretScope): PathProblem[] {
  const sources = stepSources(doc);
  return [
    ...duplicateStepProblems(sources),
    ...sources.flatMap((s, i) => templateProblems(s, stepsBefore(sources, i), secretKeys)),
    ...(scope && Object.keys(scope.hosts).length ? sources.flatMap((s) => secretHostProblems(s, scope)) : []),
  ];
}

const STEP_OUTPUT_MARK = "fleetcron-step-output";

/**
 * The host a URL template goes to, with config values filled in; null when a step's response
 * decides it (then only the run-time check can tell).
 */
function staticHost(url: string, scope: SecretScope): string | null {
  const filled = url.replace(ANY_TEMPLATE, (t) => {
    const name = withoutRaw(t.slice(2, -2).trim());
    if (Object.hasOwn(scope.values, name)) return scope.values[name]!;
    return (BUILTIN_NAMES as readonly string[]).includes(name) ? "x" : STEP_OUTPUT_MARK;
  });
  try {
    const host = new URL(filled).hostname;
    return host.includes(STEP_OUTPUT_MARK) ? null : host;
  } catch {
    return null;
  }
}

/** A bound secret used in a step's URL, headers or body (or its auth) whose host is not allowed. */
function secretHostProblems(step: StepSource, scope: SecretScope): PathProblem[] {
  const problems: PathProblem[] = [];
  const urlOf = (path: string) => step.templated.find((t) => t.path === path)?.value;
  const requestHost = typeof urlOf(joinPath(step.path, "url")) === "string" ? staticHost(urlOf(joinPath(step.path, "url")) as string, scope) : null;
  const authUrl = step.templated.find((t) => /(^|\.)auth$/.test(t.path));
  const tokenUrl = authUrl && isPlainObject(authUrl.value) && typeof authUrl.value.token_url === "string" ? authUrl.value.token_url : null;
  const tokenHost = tokenUrl === null ? null : staticHost(tokenUrl, scope);
  for (const { path, value } of step.templated) {
    const isAuth = /(^|\.)auth$/.test(path);
    const host = isAuth ? tokenHost : requestHost;
    if (host === null) continue;
    walk(value, path, 1, {
      string(text, at) {
        for (const written of templateNames(text)) {
          const name = withoutRaw(written);
          const hosts = Object.hasOwn(scope.hosts, name) ? scope.hosts[name]! : null;
          if (hosts && !hostAllowed(host, hosts)) {
            problems.push({ path: at, message: `would send secret "${name}" to "${host}", but secrets.${name}.hosts allows only ${hosts.map((h) => `"${h}"`).join(", ")}` });
          }
        }
      },
    });
  }
  return problems;
}

/** Main steps before this one; for on_success/on_failure, the whole main chain plus earlier steps of the same list. */
function stepsBefore(sources: StepSource[], index: number): string[] {
  const step = sources[index]!;
  return sources
    .slice(0, index)
    .filter((s) => s.chain === step.chain || s.chain === "actions")
    .map((s) => s.name);
}

function duplicateStepProblems(sources: StepSource[]): PathProblem[] {
  const first = new Map<string, StepSource>();
  const problems: PathProblem[] = [];
  for (const source of sources) {
    const earlier = first.get(source.name);
    if (!earlier) {
      first.set(source.name, source);
      continue;
    }
    problems.push({
      path: joinPath(source.path, "name"),
      message: `duplicate step name "${source.name}" (also ${earlier.path || "the job's own request"}); step names must be unique within a job because {{steps.NAME.…}} refers to them`,
    });
  }
  return problems;
}

function templateProblems(step: StepSource, before: string[], secretKeys: readonly string[]): PathProblem[] {
  const problems: PathProblem[] = [];
  const where = (inherited: boolean) => (inherited ? ` (as a default for step "${step.name}")` : "");
  for (const { path, value, inherited } of step.templated) {
    walk(value, path, 1, {
      string(text, at) {
        for (const name of templateNames(text)) {
          const why = checkTemplateName(name, secretKeys, before, step.chain === "on_failure" || step.chain === "on_recovery" ? NOTIFICATION_BUILTIN_NAMES : []);
          if (why) problems.push({ path: at, message: why + where(inherited) });
        }
      },
      key(key, at) {
        if (templateNames(key).length) problems.push({ path: at, message: "templates are not filled in inside object keys, only in values; move the template into a value" });
      },
    });
  }
  return problems;
}

// ── normalisation (only for documents without problems) ──

function toJob(fields: JobFields, id: string): Job {
  const main = fields.actions
    ? fields.actions.map((action, i) => toAction(action, action.name ?? defaultStepName("actions", i), fields))
    : [toAction({ ...fields, url: fields.url! }, fields.name, {})];
  return {
    id,
    name: fields.name,
    enabled: fields.enabled ?? JOB_DEFAULTS.enabled,
    schedule: toSchedule(fields),
    tz: fields.tz ?? undefined,
    actions: main,
    overlap: fields.overlap ?? JOB_DEFAULTS.overlap,
    catchup: fields.catchup ?? JOB_DEFAULTS.catchup,
    on_lost: fields.on_lost ?? JOB_DEFAULTS.on_lost,
    on_success: (fields.on_success ?? []).map((a, i) => toAction(a, a.name ?? defaultStepName("on_success", i), {})),
    on_failure: (fields.on_failure ?? []).map((a, i) => toAction(a, a.name ?? defaultStepName("on_failure", i), {})),
    alert_after_sec: fields.alert_after_sec ?? undefined,
    ...(fields.max_parallel != null ? { max_parallel: fields.max_parallel } : {}),
    ...(fields.jitter_sec ? { jitter_ms: Math.round(fields.jitter_sec * 1000) } : {}),
    ...(present(fields.limit) ? { limit: fields.limit! } : {}),
    ...(fields.deadline_sec ? { deadline_sec: fields.deadline_sec } : {}),
    ...(fields.notify_after_failures ? { notify_after_failures: fields.notify_after_failures } : {}),
    ...(fields.on_recovery?.length ? { on_recovery: fields.on_recovery.map((a, i) => toAction(a, a.name ?? defaultStepName("on_recovery", i), {})) } : {}),
    ...(fields.paused ? { paused: toPause(fields.paused) } : {}),
    ...(fields.run_on && Object.keys(fields.run_on).length > 0 ? { run_on: fields.run_on } : {}),
  };
}

function toPause(paused: NonNullable<JobFields["paused"]>): Pause {
  return {
    by: paused.by,
    at: Date.parse(paused.at),
    ...(paused.note ? { note: paused.note } : {}),
    ...(paused.until ? { until: Date.parse(paused.until) } : {}),
  };
}

function toSchedule(fields: JobFields): Schedule {
  if (present(fields.at)) return { kind: "at", text: fields.at!.trim(), ...parseAt(fields.at!)! };
  if (present(fields.cron)) return { kind: "cron", expression: fields.cron!.trim() };
  if (present(fields.every)) return { kind: "every", ms: parseEvery(fields.every!)!, text: fields.every! };
  return { kind: "hour-minute", hour: fields.hour ?? null, minute: fields.minute! };
}

function toAction(action: RequestFields & Pick<ActionFields, "url"> & Partial<ActionFields>, name: string, defaults: RequestFields): HttpAction {
  const body = action.body !== undefined ? action.body : defaults.body;
  const statuses = action.expect_status ?? defaults.expect_status;
  const result: HttpAction = {
    type: "http",
    name,
    method: (action.method ?? defaults.method ?? JOB_DEFAULTS.method).toUpperCase(),
    url: action.url,
    headers: mergeHeaders(defaults.headers ?? {}, action.headers ?? {}),
    timeout_sec: action.timeout_sec ?? defaults.timeout_sec ?? JOB_DEFAULTS.timeout_sec,
    retry: toRetry(action.retry ?? defaults.retry),
    expect_status: statuses === null || statuses === undefined ? [] : typeof statuses === "number" ? [statuses] : statuses,
    continue_on_failure: action.continue_on_failure ?? JOB_DEFAULTS.continue_on_failure,
  };
  // Only what differs from the default is kept, so a job written without these reads as before.
  const sign = action.sign ?? defaults.sign;
  if (sign === false) result.sign = false;
  const follow = action.follow_redirects ?? defaults.follow_redirects;
  if (follow && follow !== "same-origin") result.follow_redirects = follow;
  const record = action.record_response ?? defaults.record_response;
  if (record === false) result.record_response = false;
  const auth = action.auth ?? defaults.auth;
  if (auth) {
    result.auth = {
      type: auth.type,
      token_url: auth.token_url,
      client_id: auth.client_id,
      client_secret: auth.client_secret,
      client_auth: auth.client_auth ?? "basic",
      ...(auth.scope ? { scope: auth.scope } : {}),
      ...(auth.audience ? { audience: auth.audience } : {}),
    };
  }
  if (body !== undefined && body !== null) result.body = body;
  const when = toWhen(action.when);
  if (when) result.when = when;
  return result;
}

/** Header names are case-insensitive: an action's `authorization` replaces the job's `Authorization`. */
function mergeHeaders(defaults: Record<string, string>, own: Record<string, string>): Record<string, string> {
  const ownNames = new Set(Object.keys(own).map((k) => k.toLowerCase()));
  const kept = Object.entries(defaults).filter(([k]) => !ownNames.has(k.toLowerCase()));
  return { ...Object.fromEntries(kept), ...own };
}

function toRetry(retry: RequestFields["retry"]): RetryPolicy {
  const d = JOB_DEFAULTS.retry;
  const delay = retry?.delay_sec ?? d.delay_sec;
  return {
    retries: retry?.retries ?? d.retries,
    delay_sec: delay,
    backoff: retry?.backoff ?? d.backoff,
    // A long first delay is not silently cut short by a default cap the user never wrote.
    max_delay_sec: retry?.max_delay_sec ?? Math.max(d.max_delay_sec, delay),
    jitter: retry?.jitter ?? d.jitter,
  };
}

function toWhen(when: ActionFields["when"]): When | undefined {
  if (!when) return undefined;
  const entries = Object.entries(when).filter(([, values]) => Array.isArray(values));
  return entries.length ? (Object.fromEntries(entries) as When) : undefined;
}
