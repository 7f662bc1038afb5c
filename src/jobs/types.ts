/**
 * The job model after validation. A stored job document (seed format or FleetCron additions) is
 * parsed by `jobs/schema.ts` into a `Job`; everything downstream (schedule, executor, agent) sees only
 * this shape, never raw documents.
 */

/** Conditions on the occurrence's local wall time (in the job's zone); every listed key must match. */
export interface When {
  hour_in?: number[];
  minute_in?: number[];
  /** 0 = Sunday … 6 = Saturday (7 is accepted as Sunday), as in cron. */
  weekday_in?: number[];
  day_in?: number[];
  month_in?: number[];
}

export interface RetryPolicy {
  /** Extra attempts after the first (0 = try once). */
  retries: number;
  delay_sec: number;
  /** Multiplier per further attempt: delay_sec × backoff^(n-1). 1 = constant. */
  backoff: number;
  max_delay_sec: number;
  /** Fraction of the delay added or removed at random (0 … 1). */
  jitter: number;
}

export interface HttpAction {
  type: "http";
  name: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** A string is sent as is; an object or array is sent as JSON (templates rendered inside strings). */
  body?: unknown;
  timeout_sec: number;
  retry: RetryPolicy;
  /** Statuses that count as success; empty = any 2xx. */
  expect_status: number[];
  when?: When;
  continue_on_failure: boolean;
  /** false: no `FleetCron-Signature` even when the config has signing_keys (README, "Signed requests"). Default true. */
  sign?: boolean;
  /** Default "same-origin" (README, "Redirects"). */
  follow_redirects?: "same-origin" | "any" | "none";
  /** false: the response body is never stored in the run record. Default true. */
  record_response?: boolean;
  /** Fetches a bearer token before the request (README, "OAuth2 client credentials"). */
  auth?: OAuth2ClientCredentials;
}

export interface OAuth2ClientCredentials {
  type: "oauth2_client_credentials";
  token_url: string;
  client_id: string;
  client_secret: string;
  scope?: string;
  audience?: string;
  client_auth: "basic" | "body";
}

export type Schedule =
  /** The seed's form: `hour` null = every hour. */
  | { kind: "hour-minute"; hour: number | null; minute: number }
  | { kind: "cron"; expression: string }
  /** Elapsed-time interval aligned to the Unix epoch. */
  | { kind: "every"; ms: number; text: string }
  /** Once (`at`): an instant when the text has an offset, else a wall time read in the job's zone. */
  | { kind: "at"; text: string; instant?: number; wall?: AtWallTime };

/** A local date and time of a one-time job, without a zone (schedule/zone.ts `WallTime`). */
export interface AtWallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** `jobs pause`: state FleetCron keeps on the job document, not part of a jobs file. */
export interface Pause {
  note?: string;
  /** OS user@host of whoever paused it. */
  by: string;
  /** ms since epoch */
  at: number;
  /** Occurrences at or after this instant fire again (ms since epoch); absent = until `jobs resume`. */
  until?: number;
}

export type OverlapPolicy = "skip" | "allow";
export type CatchupPolicy = "skip" | "last" | "all";
export type LostPolicy = "rerun" | "skip";

export interface Job {
  /** Store identity (ObjectId hex for documents written the seed's way). */
  id: string;
  name: string;
  enabled: boolean;
  schedule: Schedule;
  /** IANA zone, or undefined to use the config's `tz`. */
  tz?: string;
  /** The seed's single-request form is normalised into one action named after the job. */
  actions: HttpAction[];
  overlap: OverlapPolicy;
  catchup: CatchupPolicy;
  on_lost: LostPolicy;
  on_success: HttpAction[];
  on_failure: HttpAction[];
  /** `on_failure` runs only when this many consecutive occurrences have failed (absent: 1). */
  notify_after_failures?: number;
  /** Runs once on the first success after a failure notification (`{{failures}}` = the streak). */
  on_recovery?: HttpAction[];
  /** Set by `jobs pause`; occurrences before `until` fire nothing and leave no record. */
  paused?: Pause;
  alert_after_sec?: number;
  /** Attempts of this job that may run at once on one agent; unset: see `maxParallelOf`. */
  max_parallel?: number;
  /** `jitter_sec` in ms: each occurrence fires up to this long after its instant; unset: on it. */
  jitter_ms?: number;
  /** Config `limits` key whose flow control this job's requests share (fleet-wide). */
  limit?: string;
  /** The whole run (retries, steps, notifications) ends `error` with reason `deadline` after this. */
  deadline_sec?: number;
  /** Only agents whose config `tags` match every entry may fire it. */
  run_on?: Record<string, string>;
}

/** A stored document that failed validation: reported and skipped, never run. */
export interface InvalidJob {
  id: string;
  name: string;
  problems: ValidationProblem[];
}

export interface ValidationProblem {
  /** Job name, or `#<index>` in a file when the name itself is missing. */
  job: string;
  /** Dotted path inside the job document, e.g. `actions[1].retry.retries`. */
  path: string;
  message: string;
}
