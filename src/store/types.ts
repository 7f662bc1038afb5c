/**
 * The store port: every backend (embedded SQLite, MongoDB) implements exactly this, and the shared
 * contract suite (`tests/contract/store.contract.ts`) holds each to it.
 *
 * Rules every implementation follows:
 * - Exclusivity rests on one primitive only: `insert*` of a record with a given id, which returns
 *   `false` when the id exists (a lost race, never an error). Updates are last-writer-wins and
 *   nothing correct may depend on their atomicity (FerretDB v1 computes updates in Go, so two
 *   conditional updates can both "succeed").
 * - Backends never read the clock: callers pass `now` (ms since epoch) wherever time matters.
 * - Calls made on every heartbeat or occurrence are point lookups by id, batched inserts, or reads
 *   of small collections (machines, serials, recent commands), so a long history costs nothing.
 * - Every failure is thrown as a `StoreError` (core/errors.ts); the agent counts only those as an
 *   outage. Batched claims report per record instead (see `ClaimOutcome`).
 * - The protocol these calls serve is written in docs/protocol.md.
 * - Dates cross the port as `Date` (MongoDB stores BSON dates, so the seed's monitoring queries on
 *   `machines.last_seen` and `job_runs.scheduled_for` keep working).
 */

export type RunStatus = "running" | "success" | "error" | "skipped" | "lost" | "missed";
/**
 * `alert`: a dead-man alert record (`<run_id>!alert`, attempt 0), not an attempt; `notify`: the
 * marker of a notification sent once per failure streak (`<run_id>!notified`, `!recovered`,
 * attempt 0). `backfill` and `retry` are attempts an operator asked for (`jobs backfill`, `runs
 * retry`), run by the CLI.
 */
export type RunTrigger = "schedule" | "manual" | "catchup" | "takeover" | "alert" | "notify" | "backfill" | "retry";

/** Raw job document as stored: seed fields plus FleetCron additions; validated by `jobs/schema.ts`. */
export interface JobDocument {
  _id: string;
  name?: unknown;
  [key: string]: unknown;
}

export interface StepRecord {
  name: string;
  status: "success" | "error" | "skipped";
  http_status?: number;
  attempts: number;
  duration_ms: number;
  error?: string;
  /** Response body (truncated, secrets masked). */
  response?: string;
  /** Why a step did not run (`when` did not match, an earlier step failed). */
  reason?: string;
  /** Redirects followed, one line each; a cross-origin hop names the headers it dropped. */
  redirects?: string[];
}

/** One attempt of one occurrence: `job_runs` in the seed. */
export interface RunRecord {
  /** `run_id` for attempt 1, `run_id#N` for attempt N. */
  _id: string;
  run_id: string;
  job_id: string;
  job_name: string;
  scheduled_for: Date;
  attempt: number;
  trigger: RunTrigger;
  status: RunStatus;
  /** Why it did not run, or why it failed, in words an operator can act on. */
  reason?: string;
  machine_id?: string;
  serial?: number;
  claimed_at: Date;
  started_at?: Date;
  finished_at?: Date;
  /** Written by v1 agents (per-attempt leases); v2 agents' liveness is their heartbeat. */
  lease_until?: Date;
  /** The claiming agent's session: its heartbeat is this attempt's lease (docs/protocol.md). */
  session?: string;
  /** Random per claim, so a claim whose acknowledgement was lost can be recognised on read-back. */
  nonce?: string;
  duration_ms?: number;
  /** The flow-control limit the attempt ran under, and how long it waited for it. */
  limit?: string;
  waited_ms?: number;
  steps?: StepRecord[];
  error?: string;
}

export interface MachineRecord {
  /** The machine id. */
  _id: string;
  hostname: string;
  pid: number;
  serial: number | null;
  status: "running" | "draining" | "stopped";
  version: string;
  started_at: Date;
  last_seen: Date;
  /** This agent's clock minus the store's, ms, as measured at its last heartbeat. */
  clock_offset_ms: number | null;
  /** Reported on every heartbeat so `status` can say why a job is not running anywhere. */
  invalid_jobs?: number;
  /** Coordination protocol version (2); a v2 agent does not fire beside v1 agents. */
  protocol?: number;
  /** Random per start (and per lapse of the fence): a new session means the old one is dead. */
  session?: string;
  /** Counts heartbeats within a session. */
  seq?: number;
  /** The attempts this session runs: its heartbeat is their lease. */
  running?: RunningAttempt[];
  /** Jobs loaded: only ready agents take part in placement. */
  ready?: boolean;
  /** Config `placement` of this agent. */
  placement?: "spread" | "serial";
  /** Config `tags`, matched by jobs' `run_on`. */
  tags?: Record<string, string>;
  /** The agent's default zone (config `tz`), so `status` can warn when the fleet disagrees. */
  default_tz?: string;
  /** When this agent stopped claiming (drain, SIGTERM): catch-up after a restart starts here. */
  claims_stopped_at?: Date;
  /**
   * Earlier sessions of this machine whose attempts this session has not finished taking over
   * (docs/protocol.md, "Takeover"): should it die too, whoever takes it over takes those as well.
   */
  inherited?: string[];
}

/**
 * Every optional field of a machine record, so a heartbeat can remove the ones it no longer
 * carries (`beat` replaces the record; MongoDB's `$set` alone would keep a stale value).
 */
export const MACHINE_OPTIONAL_FIELDS = {
  invalid_jobs: true,
  protocol: true,
  session: true,
  seq: true,
  running: true,
  ready: true,
  placement: true,
  tags: true,
  default_tz: true,
  claims_stopped_at: true,
  inherited: true,
} as const satisfies Record<{ [K in keyof MachineRecord]-?: undefined extends MachineRecord[K] ? K : never }[keyof MachineRecord], true>;

export interface RunningAttempt {
  /** The attempt's `_id` in `job_runs`. */
  id: string;
  job_id: string;
  scheduled_for: Date;
}

/** What a batched claim learned of each record: `unknown` (a store error) is never a lost race. */
export type ClaimOutcome = "won" | "lost" | "unknown";

/** One final write of a batch: applied only while the attempt is still `running`. */
export interface FinalWrite {
  id: string;
  patch: Partial<Omit<RunRecord, "_id">>;
}

export interface SerialRecord {
  /** The serial number, 1..max_serial. */
  _id: number;
  machine_id: string;
  claimed_at: Date;
  last_seen: Date;
}

export type CommandType = "reload" | "reload-config" | "drain" | "trigger";

export interface CommandRecord {
  _id: string;
  type: CommandType;
  /** A machine id, or null for every agent. */
  target: string | null;
  created_at: Date;
  /** `trigger`: the job to run now, under this run id (chosen by the CLI, which then waits for the record). */
  job_id?: string;
  run_id?: string;
}

export interface CommandAck {
  /** `<command id>:<machine id>` — inserted once, so an ack is never lost to a racing update. */
  _id: string;
  command_id: string;
  machine_id: string;
  acked_at: Date;
  error?: string;
}

/** Who changed what (`audit` collection): one record per change, secret values masked before it is written. */
export interface AuditRecord {
  /** `<ISO time>-<random>`: unique, and sorts by time. */
  _id: string;
  at: Date;
  /** A token name (API, page), or the OS user@host (CLI, jobs_file). */
  actor: string;
  via: "cli" | "api" | "page" | "jobs_file";
  /** create, update, delete, enable, disable, trigger, pause, resume, backfill, retry, … */
  action: string;
  /** The job's name, or null for a change that concerns no one job. */
  job: string | null;
  job_id?: string;
  run_id?: string;
  /** The job document before and after the change (masked); absent where nothing changed in it. */
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  note?: string;
}

export interface AuditQuery {
  job?: string;
  limit: number;
}

export interface RunQuery {
  job_id?: string;
  job_name?: string;
  status?: RunStatus;
  limit: number;
}

/** See `Store.getRevisions`: each is an opaque token that changes with every write of its kind. */
export interface Revisions {
  jobs: string;
  commands: string;
}

export interface Store {
  readonly kind: "sqlite" | "mongo";
  /** Where the data lives, for `status` (path or redacted URI). */
  readonly location: string;
  /** Whether `finishRuns` applies only to attempts still running (see there). */
  readonly finalWritesGuarded: boolean;
  close(): Promise<void>;
  /** The store's own clock, for skew detection (SQLite: this host's clock). */
  serverTime(): Promise<Date>;

  // jobs
  listJobs(): Promise<JobDocument[]>;
  getJob(id: string): Promise<JobDocument | null>;
  findJobByName(name: string): Promise<JobDocument | null>;
  /** Creates a document with a fresh id and returns the id. */
  createJob(doc: Omit<JobDocument, "_id">): Promise<string>;
  /** Puts back a deleted job under its old id (undoing a failed `jobs apply --prune`). */
  createJobWithId(id: string, doc: Omit<JobDocument, "_id">): Promise<void>;
  /** Replaces the whole document (keeps the id). */
  replaceJob(id: string, doc: Omit<JobDocument, "_id">): Promise<void>;
  deleteJob(id: string): Promise<boolean>;
  /** Changes whenever jobs change through FleetCron; agents compare it each heartbeat. */
  getJobsRevision(): Promise<string>;
  bumpJobsRevision(now: Date): Promise<void>;
  /**
   * The jobs and commands revisions in one read: a heartbeat compares them and lists jobs or
   * commands only when one changed (docs/protocol.md, "Heartbeat").
   */
  getRevisions(): Promise<Revisions>;

  // runs
  /** The claim primitive: false when a run with this `_id` exists. */
  insertRun(run: RunRecord): Promise<boolean>;
  /**
   * Many claims in one round trip (MongoDB `insertMany` unordered, one SQLite transaction): one
   * outcome per record, in order. Only a duplicate key is `lost`; any other failure is `unknown`
   * for the records it may concern, which the caller settles by reading back (docs/protocol.md).
   * Throws a StoreError only when nothing was sent.
   */
  insertRuns(runs: RunRecord[]): Promise<ClaimOutcome[]>;
  /**
   * Final records in one round trip. Where `finalWritesGuarded`, each patch applies only to an
   * attempt still `running`, so a late write cannot turn a `lost` attempt back into `success`;
   * elsewhere (FerretDB v1, whose filtered updates are neither atomic nor cheap) by `_id` alone,
   * and the agent's fence is the guard.
   */
  finishRuns(finals: FinalWrite[]): Promise<void>;
  /** Attempts recorded `running`, optionally of one machine (takeover discovery). */
  listRunning(machineId?: string): Promise<RunRecord[]>;
  getRun(id: string): Promise<RunRecord | null>;
  getRuns(ids: string[]): Promise<RunRecord[]>;
  updateRun(id: string, patch: Partial<Omit<RunRecord, "_id">>): Promise<void>;
  /** Newest `scheduled_for` first. */
  listRuns(query: RunQuery): Promise<RunRecord[]>;
  /**
   * Every record (all attempts) of one job's occurrences scheduled in [`from`, `to`], oldest first
   * and by `_id` within an instant, at most `limit`: what `jobs backfill` and `runs retry` decide
   * from (served by the `job_id, scheduled_for` index).
   */
  listOccurrenceRuns(jobId: string, from: Date, to: Date, limit: number): Promise<RunRecord[]>;
  /** The newest finished-or-running attempt per job, for `jobs list` (one read, not one per job). */
  latestRunsByJob(): Promise<Map<string, RunRecord>>;
  /** Deletes runs scheduled before `before`; returns how many. */
  pruneRuns(before: Date): Promise<number>;

  // machines and serials
  putMachine(machine: MachineRecord): Promise<void>;
  /**
   * The heartbeat: upserts the machine record with `last_seen` set by the store's own clock
   * (MongoDB `$currentDate`; SQLite has one host clock, so `now` is used), one small write. It
   * replaces the record: an optional field the new heartbeat lacks is gone afterwards.
   */
  beat(machine: Omit<MachineRecord, "last_seen">, now: Date): Promise<void>;
  getMachine(id: string): Promise<MachineRecord | null>;
  listMachines(): Promise<MachineRecord[]>;
  /** The claim primitive for serials: false when the serial is held. */
  insertSerial(serial: SerialRecord): Promise<boolean>;
  listSerials(): Promise<SerialRecord[]>;
  /** Refreshes `last_seen` of a serial this machine holds. */
  touchSerial(serial: number, machineId: string, now: Date): Promise<void>;
  /**
   * Deletes the serial only if it is still exactly as read (same holder, same `last_seen`), so two
   * agents freeing the same stale serial cannot both free a fresh re-claim. Returns whether it did.
   * (A delete's count is decided by the database itself, even on FerretDB.)
   */
  deleteSerial(serial: number, machineId: string, lastSeen?: Date): Promise<boolean>;

  // commands
  /** Inserts the command, then changes the commands revision, so agents list commands on their next heartbeat. */
  insertCommand(command: CommandRecord): Promise<void>;
  /** Commands created at or after `since`, oldest first. */
  listCommands(since: Date): Promise<CommandRecord[]>;
  /** false when this machine already acknowledged the command. */
  insertAck(ack: CommandAck): Promise<boolean>;
  listAcks(commandId: string): Promise<CommandAck[]>;
  pruneCommands(before: Date): Promise<number>;

  // audit
  insertAudit(record: AuditRecord): Promise<void>;
  /** Newest first. */
  listAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /** Deletes records older than `before`; returns how many. */
  pruneAudit(before: Date): Promise<number>;
}
