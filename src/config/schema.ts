/**
 * The config file's shape. Seed keys keep their meaning (`mongodb_uri`, `db_name`, `tz`,
 * `max_serial`, `secrets`); every further key has a default, so an empty file (or none) is a
 * working single-machine setup on the embedded store.
 */
import * as v from "valibot";
import { timingViolations, timingWarnings as protocolTimingWarnings } from "../coordinator/timing.ts";
import { isValidTimeZone } from "../schedule/zone.ts";
import { notArray, type PathProblem } from "./issues.ts";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export const LOG_FORMATS = ["pretty", "json"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];
export const PLACEMENTS = ["spread", "serial"] as const;
export const API_ROLES = ["read", "operate", "admin"] as const;
export type ApiRole = (typeof API_ROLES)[number];
export type Placement = (typeof PLACEMENTS)[number];

/** Defaults that need no context. `tz`, `user_agent`, `sqlite_path` depend on the host and are filled in by `load.ts`. */
export const CONFIG_DEFAULTS = {
  db_name: "fleetcron",
  max_serial: 10,
  /** Failure detection = dead_after_sec; 3 heartbeats tolerate two late writes to a slow store. */
  heartbeat_sec: 5,
  dead_after_sec: 15,
  /** The seed's stagger: serial k waits (k-1) × 5 s. */
  failover_step_sec: 5,
  /** Obsolete since coordination v2 (an agent's heartbeat is the lease of its attempts): warned, ignored. */
  lease_sec: 30,
  placement: "spread" as Placement,
  /** One hour: an agent fleet down overnight does not fire yesterday's reports at 08:00. */
  catchup_window_sec: 3600,
  history_days: 30,
  max_concurrent_runs: 50,
  log_level: "info" as LogLevel,
  log_format: "pretty" as LogFormat,
  /** log_file (none = stderr) is rotated at log_max_mb, keeping log_keep older files. */
  log_max_mb: 10,
  log_keep: 5,
  /** Loopback only: the status page shows job names and run history. */
  http_host: "127.0.0.1",
  shutdown_timeout_sec: 30,
} as const;

const POSITIVE = "must be a number greater than 0";
const NON_NEGATIVE = "must be a number 0 or greater";

const positive = () => v.pipe(v.number(POSITIVE), v.finite(POSITIVE), v.gtValue(0, POSITIVE));
const nonNegative = () => v.pipe(v.number(NON_NEGATIVE), v.finite(NON_NEGATIVE), v.minValue(0, NON_NEGATIVE));
/**
 * A duration with a ceiling: no setting may push a timer or a cut-off date past what a Date (and
 * setTimeout's 24.8 days) can hold; `unit` names it in the message ("seconds", "days").
 */
const boundedPositive = (max: number, unit: string) => {
  const message = `must be a number greater than 0, at most ${max} ${unit}`;
  return v.pipe(v.number(message), v.finite(message), v.gtValue(0, message), v.maxValue(max, message));
};
const boundedNonNegative = (max: number, unit: string) => {
  const message = `must be a number 0 or greater, at most ${max} ${unit}`;
  return v.pipe(v.number(message), v.finite(message), v.minValue(0, message), v.maxValue(max, message));
};
const HOUR_SEC = 3600;
const DAY_SEC = 86_400;
const integer = (min: number, max: number, message = `must be an integer ${min}-${max}`) =>
  v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message));
const nonEmpty = (message: string) => v.pipe(v.string(message), v.minLength(1, message));
const picklist = <T extends readonly string[]>(options: T) =>
  v.picklist(options, `must be one of ${options.map((o) => `"${o}"`).join(", ")}`);

const RATE_MESSAGE = 'must be a rate such as "5/s", "100/m" or "1000/h" (starts per second, minute or hour)';
const LIMIT_MESSAGE = 'must be an object with "parallel" (an integer), "rate" (e.g. "5/s") or both';
const LIMITS_MESSAGE = 'must be an object of limit names to limits, e.g. {"partner-api": {"parallel": 2, "rate": "5/s"}}';

/** A flow-control rate: at most `count` starts in any `perMs` window. */
export interface Rate {
  count: number;
  perMs: number;
}

const RATE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** `"5/s"` → 5 starts per 1000 ms; null when it is not a rate (count 1-100000, unit s, m or h). */
export function parseRate(text: string): Rate | null {
  const match = /^\s*(\d{1,6})\s*\/\s*([smh])\s*$/.exec(text);
  if (!match) return null;
  const count = Number(match[1]);
  if (count < 1 || count > 100_000) return null;
  return { count, perMs: RATE_UNITS[match[2]!]! };
}

export const MONGO_URI_MESSAGE = 'must be a MongoDB connection string starting with "mongodb://" or "mongodb+srv://" (leave the key out to use the embedded store)';
const TZ_MESSAGE = 'must be an IANA time zone such as "Asia/Seoul", "America/New_York" or "UTC"';

const SECRET_MESSAGE = 'must be a string, or { "value": "…", "hosts": ["api.example.com"] } (secret values are text; quote numbers)';
const HOSTS_MESSAGE = 'must be a non-empty list of host names such as "api.example.com" or "*.example.com"';
/** A host name, `*.` + a domain, or a bracketed IPv6 address; compared lowercased. */
export const SECRET_HOST = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$|^\[[0-9a-f:.]+\]$/i;
const secretObject = v.strictObject(
  {
    /** May be left out when FLEETCRON_SECRET_<NAME> gives it. */
    value: v.optional(v.string("must be a string (secret values are text; quote numbers)")),
    hosts: v.optional(v.pipe(v.array(v.pipe(v.string(HOSTS_MESSAGE), v.regex(SECRET_HOST, HOSTS_MESSAGE)), HOSTS_MESSAGE), v.minLength(1, HOSTS_MESSAGE))),
  },
  'must be { "value": "…", "hosts": ["api.example.com"] } (only those keys)',
);
const SIGNING_KEY_MESSAGE = 'must be { "id": "k1", "secret": "…" }';
const TOKEN_MESSAGE = 'must be an object such as {"token": "…", "role": "operate"} or {"token_sha256": "<64 hex digits>", "role": "read"}';
const TOKEN_NAME = "token names are 1-64 letters, digits, _ . @ or -";
const TOKEN_VALUE = "must be a string of at least 16 characters (e.g. `openssl rand -hex 24`)";
const TOKEN_SHA256 = "must be the SHA-256 of the token as 64 hex digits (e.g. `printf %s TOKEN | sha256sum`)";

/** `api_tokens`: who may use the HTTP API and the page's actions (src/api/auth.ts). */
const apiTokensEntry = notArray(
  v.record(
    v.pipe(v.string(), v.regex(/^[\w.@-]{1,64}$/, TOKEN_NAME)),
    notArray(
      v.pipe(
        v.strictObject(
          {
            token: v.optional(v.pipe(v.string(TOKEN_VALUE), v.minLength(16, TOKEN_VALUE))),
            token_sha256: v.optional(v.pipe(v.string(TOKEN_SHA256), v.regex(/^[0-9a-fA-F]{64}$/, TOKEN_SHA256))),
            role: picklist(API_ROLES),
          },
          TOKEN_MESSAGE,
        ),
        v.check((t) => (t.token === undefined) !== (t.token_sha256 === undefined), 'needs exactly one of "token" and "token_sha256"'),
      ),
      TOKEN_MESSAGE,
    ),
    'must be an object of token names to tokens, e.g. {"deploy": {"token": "…", "role": "admin"}}',
  ),
  'must be an object of token names to tokens, e.g. {"deploy": {"token": "…", "role": "admin"}}',
);

const configEntries = {
  mongodb_uri: v.optional(v.nullable(v.pipe(v.string(MONGO_URI_MESSAGE), v.regex(/^mongodb(\+srv)?:\/\/\S+$/, MONGO_URI_MESSAGE))), null),
  db_name: v.optional(
    v.pipe(
      v.string("must be a MongoDB database name"),
      v.regex(/^[^/\\. "$*<>:|?]{1,63}$/, 'must be a MongoDB database name: 1-63 characters, none of /\\. "$*<>:|?'),
    ),
    CONFIG_DEFAULTS.db_name,
  ),
  tz: v.optional(v.pipe(v.string(TZ_MESSAGE), v.check(isValidTimeZone, TZ_MESSAGE))),
  max_serial: v.optional(integer(1, 1000), CONFIG_DEFAULTS.max_serial),
  secrets: v.optional(
    notArray(
      v.record(
        v.string(),
        v.union([v.string(), secretObject], SECRET_MESSAGE),
        "must be an object of names to secrets (a string, or { \"value\": \"…\", \"hosts\": [\"api.example.com\"] })",
      ),
      "must be an object of names to secrets",
    ),
    {},
  ),
  /** Non-secret template values (README, "Templates"): shown in logs and records as written. */
  vars: v.optional(
    notArray(
      v.record(v.string(), v.string("must be a string (var values are text; quote numbers)"), "must be an object of names to strings"),
      "must be an object of names to strings",
    ),
    {},
  ),
  /** Every secret must say where it may be sent (README, "Secret hosts"). */
  strict_secrets: v.optional(v.boolean("must be true or false"), false),
  /** Request signing (README, "Signed requests"): the first key signs, the rest are kept for rotation. */
  signing_keys: v.optional(
    v.pipe(
      v.array(
        notArray(
          v.object(
            {
              id: v.pipe(v.string("must be a key id such as \"k2\""), v.regex(/^[\w.-]{1,64}$/, "must be 1-64 letters, digits, _ . - (it is sent in the signature header)")),
              secret: v.pipe(v.string("must be a string of at least 16 characters"), v.minLength(16, "must be a string of at least 16 characters")),
            },
            SIGNING_KEY_MESSAGE,
          ),
          SIGNING_KEY_MESSAGE,
        ),
        "must be a list of { \"id\", \"secret\" } keys, the signing key first",
      ),
      v.check((keys) => new Set(keys.map((k) => k.id)).size === keys.length, "must not repeat a key id"),
    ),
    [],
  ),
  sqlite_path: v.optional(v.nullable(nonEmpty("must be a file path (relative paths start at the config file's folder)")), null),
  machine_id: v.optional(
    v.nullable(v.pipe(v.string("must be a string"), v.regex(/^[^\s:]{1,128}$/, "must be 1-128 characters without spaces or colons"))),
    null,
  ),
  heartbeat_sec: v.optional(boundedPositive(HOUR_SEC, "seconds"), CONFIG_DEFAULTS.heartbeat_sec),
  dead_after_sec: v.optional(boundedPositive(DAY_SEC, "seconds"), CONFIG_DEFAULTS.dead_after_sec),
  failover_step_sec: v.optional(boundedPositive(HOUR_SEC, "seconds"), CONFIG_DEFAULTS.failover_step_sec),
  lease_sec: v.optional(boundedPositive(DAY_SEC, "seconds"), CONFIG_DEFAULTS.lease_sec),
  catchup_window_sec: v.optional(boundedNonNegative(366 * DAY_SEC, "seconds (366 days)"), CONFIG_DEFAULTS.catchup_window_sec),
  history_days: v.optional(boundedPositive(3660, "days"), CONFIG_DEFAULTS.history_days),
  max_concurrent_runs: v.optional(integer(1, 10_000), CONFIG_DEFAULTS.max_concurrent_runs),
  user_agent: v.optional(nonEmpty("must be a non-empty string")),
  log_level: v.optional(picklist(LOG_LEVELS), CONFIG_DEFAULTS.log_level),
  log_format: v.optional(picklist(LOG_FORMATS), CONFIG_DEFAULTS.log_format),
  log_file: v.optional(v.nullable(nonEmpty("must be a file path (relative paths start at the config file's folder), or null for stderr")), null),
  log_max_mb: v.optional(v.pipe(positive(), v.maxValue(100_000, "must be at most 100000 (MB)")), CONFIG_DEFAULTS.log_max_mb),
  log_keep: v.optional(integer(0, 1000, "must be an integer 0-1000 (rotated files kept)"), CONFIG_DEFAULTS.log_keep),
  http_port: v.optional(v.nullable(integer(0, 65_535, "must be a port number 0-65535 (0 = any free port), or null for off")), null),
  http_host: v.optional(nonEmpty("must be a host name or IP address"), CONFIG_DEFAULTS.http_host),
  jobs_file: v.optional(v.nullable(nonEmpty("must be a file path (relative paths start at the config file's folder)")), null),
  shutdown_timeout_sec: v.optional(boundedPositive(HOUR_SEC, "seconds"), CONFIG_DEFAULTS.shutdown_timeout_sec),
  placement: v.optional(picklist(PLACEMENTS), CONFIG_DEFAULTS.placement),
  limits: v.optional(
    notArray(
      v.record(
        v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'limit names are 1-64 letters, digits, "_", "." or "-", starting with a letter or digit')),
        notArray(
          v.pipe(
            v.object(
              {
                parallel: v.optional(integer(1, 10_000, "must be an integer 1-10000: requests of the jobs sharing this limit in flight at once, fleet-wide")),
                rate: v.optional(v.pipe(v.string(RATE_MESSAGE), v.check((text) => parseRate(text) !== null, RATE_MESSAGE))),
              },
              LIMIT_MESSAGE,
            ),
            v.check((limit) => limit.parallel !== undefined || limit.rate !== undefined, LIMIT_MESSAGE),
          ),
          LIMIT_MESSAGE,
        ),
        LIMITS_MESSAGE,
      ),
      LIMITS_MESSAGE,
    ),
    {},
  ),
  api_tokens: v.optional(apiTokensEntry, {}),
  tags: v.optional(
    notArray(
      v.record(v.pipe(v.string(), v.regex(/^[\w.-]{1,64}$/, "tag names are 1-64 letters, digits, _ . -")), v.string('must be a string, e.g. "eu"'), 'must be an object of tag names to values, e.g. {"region": "eu"}'),
      'must be an object of tag names to values, e.g. {"region": "eu"}',
    ),
    {},
  ),
};

const OBJECT_MESSAGE = "must be a JSON object of settings";
export const configFileSchema = notArray(v.object(configEntries, OBJECT_MESSAGE), OBJECT_MESSAGE);

export type ConfigFile = v.InferOutput<typeof configFileSchema>;
export const CONFIG_KEYS = Object.keys(configEntries);

/** Keys whose values are credentials: problems name their type, never their value. */
export function isSensitivePath(path: string): boolean {
  if (path.startsWith("signing_keys") && !path.endsWith(".id")) return true;
  if (/^api_tokens\b.*\.token$/.test(path)) return true;
  // A secret's hosts are not secret; its value is.
  if (/^secrets(\.|\[).*\.hosts(\[\d+\])?$/.test(path)) return false;
  return path === "mongodb_uri" || path === "secrets" || path.startsWith("secrets.") || path.startsWith("secrets[");
}

type Timing = Pick<ConfigFile, "heartbeat_sec" | "dead_after_sec"> & { lease_sec?: number; failover_step_sec?: number };

const msOf = (t: Timing) => ({ heartbeatMs: t.heartbeat_sec * 1000, deadAfterMs: t.dead_after_sec * 1000, failoverStepMs: (t.failover_step_sec ?? CONFIG_DEFAULTS.failover_step_sec) * 1000 });

/**
 * Timings that break the protocol's safety (docs/protocol.md, "Timing"): an agent must be able to
 * renew its heartbeat and stop writing to its targets before another may judge it dead.
 */
export function timingProblems(config: Timing): PathProblem[] {
  if (config.dead_after_sec <= config.heartbeat_sec) {
    return [{ path: "dead_after_sec", message: `must be greater than heartbeat_sec (${config.heartbeat_sec}), ideally 3 × it (got ${config.dead_after_sec})` }];
  }
  return timingViolations(msOf(config));
}

/** Legal but fragile timings, and keys that no longer do anything. */
export function timingWarnings(config: Timing, given: Record<string, unknown> = {}): string[] {
  const warnings = protocolTimingWarnings(msOf(config));
  if ("lease_sec" in given) warnings.push("lease_sec is obsolete and ignored: since coordination v2 an agent's heartbeat is the lease of its attempts (dead_after_sec decides takeovers)");
  return warnings;
}
