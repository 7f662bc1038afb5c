import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { attemptId, occurrenceId } from "../coordinator/occurrence.ts";
import { expiredLeases, leaseId, leaseOf } from "../coordinator/lease.ts";
import { rankAmong, SerialKeeper, type Ranking } from "../coordinator/serials.ts";
import { createRedactor } from "../executor/redact.ts";
import type { Job } from "../jobs/types.ts";
import { firesBetween, nextFireAfter } from "../schedule/next.ts";
import type { CommandRecord, LeaseRecord, RunRecord, RunStatus, RunTrigger, Store } from "../store/types.ts";
import { DeadManSwitch } from "../observe/deadman.ts";
import { NOOP_OBSERVER, ObservedStoreHealth, safely, type AgentObserver } from "../observe/observer.ts";
import { executeAttempt, type ExecuteContext } from "./execute.ts";
import { loadJobSet, type JobSet } from "./job-set.ts";
import { Slots } from "./slots.ts";

/** Settings the agent runs with; `reload-config` may replace the reloadable ones. */
export interface AgentSettings {
  machineId: string;
  hostname: string;
  version: string;
  maxSerial: number;
  heartbeatMs: number;
  deadAfterMs: number;
  failoverStepMs: number;
  leaseMs: number;
  catchupWindowMs: number;
  historyDays: number;
  maxConcurrentRuns: number;
  shutdownTimeoutMs: number;
  defaultTz: string;
  secrets: Record<string, string>;
  userAgent: string;
}

export interface AgentDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  settings: AgentSettings;
  /** Re-reads the config file for `reload-config`; returns the new settings. */
  reloadConfig?: () => Promise<AgentSettings>;
  /** Applied on start and on `reload` (jobs-as-code). */
  applyJobsFile?: () => Promise<void>;
  fetch?: typeof fetch;
  /** Told about runs, takeovers and store failures (metrics); see src/observe. */
  observer?: AgentObserver;
}

/** What `/healthz`, `/metrics` and the status page read from a running agent; a copy, never live state. */
export interface AgentSnapshot {
  machineId: string;
  hostname: string;
  version: string;
  serial: number | null;
  /** 0 = primary (fires on time); k = fires k failover steps late. */
  rank: number;
  liveAgents: number;
  phase: "starting" | "running" | "stopping";
  store: { kind: Store["kind"]; location: string; reachable: boolean; downSince: number | null; lastError: string | null };
  startedAt: number;
  lastHeartbeatAt: number | null;
  runningAttempts: number;
  jobs: number;
  invalidJobs: number;
  heartbeatMs: number;
  deadAfterMs: number;
  defaultTz: string;
  secretKeys: string[];
}

/** A takeover attempt is not started beyond this: a job that kills every agent stops somewhere. */
const MAX_ATTEMPTS = 3;
/** Catch-up never starts more than this many missed occurrences of one job at once. */
const CATCHUP_CAP = 100;
const PRUNE_EVERY_MS = 3_600_000;
/** How late past its last standby's turn an occurrence may still be claimed as an on-time fire. */
const LATE_TOLERANCE_MS = 2000;

interface Occurrence {
  job: Job;
  instant: number;
}

/**
 * The agent: sleeps until the next due instant or heartbeat, claims each occurrence by unique
 * insert after its rank's stagger, runs what it won, renews serial and heartbeat, takes over
 * expired leases, applies commands, and stops gracefully.
 */
export class Agent {
  private settings: AgentSettings;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly serials: SerialKeeper;
  private readonly health: ObservedStoreHealth;
  private readonly observer: AgentObserver;
  private readonly deadman: DeadManSwitch;
  private lastHeartbeatAt: number | null = null;
  private slots: Slots;
  private jobSet: JobSet = { jobs: new Map(), invalid: [], fingerprints: new Map(), updatedAt: new Map() };
  private readonly nextAt = new Map<string, number>();
  private ranking: Ranking = { rank: 0, live: 1 };
  private jobsRevision: string | null = null;
  private readonly startedAt: number;
  private readonly handledCommands = new Set<string>();
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private missedDuringOutage: Occurrence[] = [];
  private nextHeartbeatAt = 0;
  private heartbeatInFlight = false;
  private catchingUp = false;
  private lastPruneAt = 0;
  private reportedInvalid = new Set<string>();
  /** Set once start-up has placed every job in time; later reloads schedule new jobs from now. */
  private scheduling = false;
  private stopping = false;
  private stopReason = "";
  private wake = new AbortController();
  private readonly stopSignal = new AbortController();
  private readonly hardStop = new AbortController();
  private readonly redact: (text: string) => string;

  constructor(private readonly deps: AgentDeps) {
    this.settings = deps.settings;
    this.store = deps.store;
    this.clock = deps.clock;
    this.log = deps.log;
    this.startedAt = deps.clock.now();
    this.observer = deps.observer ?? NOOP_OBSERVER;
    this.health = new ObservedStoreHealth(deps.log, this.observer);
    this.deadman = new DeadManSwitch(this.observer);
    this.slots = new Slots(deps.settings.maxConcurrentRuns);
    this.serials = new SerialKeeper(deps.store, this.serialSettings(), deps.log);
    this.redact = createRedactor(Object.values(deps.settings.secrets));
  }

  get serial(): number | null {
    return this.serials.serial;
  }

  snapshot(): AgentSnapshot {
    const s = this.settings;
    return {
      machineId: s.machineId,
      hostname: s.hostname,
      version: s.version,
      serial: this.serial,
      rank: this.ranking.rank,
      liveAgents: this.ranking.live,
      phase: this.stopping ? "stopping" : this.scheduling ? "running" : "starting",
      store: { kind: this.store.kind, location: this.store.location, reachable: !this.health.isDown, downSince: this.health.outageSince, lastError: this.health.lastError },
      startedAt: this.startedAt,
      lastHeartbeatAt: this.lastHeartbeatAt,
      runningAttempts: this.running.size,
      jobs: this.jobSet.jobs.size,
      invalidJobs: this.jobSet.invalid.length,
      heartbeatMs: s.heartbeatMs,
      deadAfterMs: s.deadAfterMs,
      defaultTz: s.defaultTz,
      secretKeys: Object.keys(s.secrets),
    };
  }

  /** Runs until `stop()` (signal, drain command); resolves once work is finished and the serial released. */
  async run(): Promise<void> {
    const fleetLastSeen = await this.untilStoreAnswers(() => this.lastSeenOfFleet());
    await this.untilStoreAnswers(() => this.heartbeat());
    if (this.deps.applyJobsFile) await this.deps.applyJobsFile();
    await this.untilStoreAnswers(() => this.reloadJobs());
    const now = this.clock.now();
    const grace = this.staggerWindowMs();
    // Occurrences a moment old may still be waiting for this agent's turn; a job never fires for
    // an instant before FleetCron wrote it.
    for (const job of this.jobSet.jobs.values()) this.schedule(job, Math.max(now - grace, this.jobSet.updatedAt.get(job.id) ?? 0));
    this.scheduling = true;
    this.log.info(
      `agent ${this.settings.machineId} running: serial ${this.serial ?? "none"}, ${this.jobSet.jobs.size} job(s)` +
        (this.jobSet.invalid.length ? `, ${this.jobSet.invalid.length} invalid job(s) skipped` : "") +
        `, store ${this.store.kind} ${this.store.location}`,
    );
    if (fleetLastSeen !== null) this.track(this.startupCatchup(fleetLastSeen, now - grace));
    this.track(this.sweepOrphans(now));

    while (!this.stopping) {
      const tick = this.clock.now();
      if (tick >= this.nextHeartbeatAt && !this.heartbeatInFlight) this.track(this.heartbeatTick());
      this.dispatchDue(tick);
      const until = Math.min(this.nextHeartbeatAt, this.earliestDue());
      this.wake = new AbortController();
      await this.clock.sleep(Math.max(0, until - this.clock.now()), AbortSignal.any([this.wake.signal, this.stopSignal.signal]));
    }
    await this.shutdown();
  }

  /** Stops claiming; `run()` then finishes running work (up to the shutdown deadline) and returns. */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopReason = reason;
    this.log.info(`stopping (${reason}): no new claims; finishing ${this.running.size} running attempt(s)`);
    this.stopSignal.abort();
  }

  // ── schedule ────────────────────────────────────────────────────────────────────────────────

  private tzOf(job: Job): string {
    return job.tz ?? this.settings.defaultTz;
  }

  private schedule(job: Job, afterMs: number): void {
    const next = nextFireAfter(job.schedule, this.tzOf(job), afterMs);
    if (next === null) this.nextAt.delete(job.id);
    else this.nextAt.set(job.id, next);
  }

  private earliestDue(): number {
    let earliest = Number.POSITIVE_INFINITY;
    for (const at of this.nextAt.values()) if (at < earliest) earliest = at;
    return earliest;
  }

  private dispatchDue(now: number): void {
    const groups = new Map<number, Job[]>();
    for (const [id, at] of this.nextAt) {
      if (at > now) continue;
      const job = this.jobSet.jobs.get(id);
      if (!job) {
        this.nextAt.delete(id);
        continue;
      }
      const group = groups.get(at);
      if (group) group.push(job);
      else groups.set(at, [job]);
      this.schedule(job, at);
    }
    for (const [instant, jobs] of groups) this.track(this.fireGroup(instant, jobs));
  }

  /** All occurrences due at one instant share one ranking read and one stagger wait. */
  private async fireGroup(instant: number, jobs: Job[]): Promise<void> {
    let ranking = this.ranking;
    try {
      ranking = rankAmong(await this.store.listSerials(), this.serialSettings(), this.clock.now());
      this.ranking = ranking;
    } catch (error) {
      this.health.failed(this.clock.now(), error);
    }
    if (this.health.isDown) {
      this.missedDuringOutage.push(...jobs.map((job) => ({ job, instant })));
      return;
    }
    const delay = instant + ranking.rank * this.settings.failoverStepMs - this.clock.now();
    if (delay > 0) await this.clock.sleep(delay, this.stopSignal.signal);
    if (this.stopping) return;
    if (this.clock.now() - instant > this.staggerWindowMs() + LATE_TOLERANCE_MS) {
      // The store answered too late for an on-time fire (a slow or returning store): these
      // occurrences follow the job's catch-up policy instead of all firing at once now.
      this.missedDuringOutage.push(...jobs.map((job) => ({ job, instant })));
      return;
    }
    try {
      // A standby does not read first: its insert fails on the unique _id when the occurrence is
      // claimed, which costs what a read would, and on FerretDB v1 (where even an _id lookup scans
      // the whole run history) far less.
      const busy = jobs.some((j) => j.overlap === "skip") ? await this.busyJobs(instant) : new Set<string>();
      for (const job of jobs) this.track(this.claimAndRun(job, instant, "schedule", busy, ranking.rank));
    } catch (error) {
      this.health.failed(this.clock.now(), error);
      this.missedDuringOutage.push(...jobs.map((job) => ({ job, instant })));
    }
  }

  /**
   * Jobs with an attempt in progress anywhere in the fleet (live leases) that started before
   * `instant` was due. Occurrences fired late together (start-up, a stalled event loop) do not
   * overlap each other.
   */
  private async busyJobs(instant: number): Promise<Set<string>> {
    const now = this.clock.now();
    const busy = new Set<string>();
    for (const lease of await this.store.listLeases()) {
      if (lease.lease_until.getTime() > now && lease.claimed_at.getTime() < instant) busy.add(lease.job_id);
    }
    return busy;
  }

  private async claimAndRun(job: Job, instant: number, trigger: RunTrigger, busy: Set<string>, rank = 0): Promise<void> {
    const runId = occurrenceId(job.id, instant);
    if (job.overlap === "skip" && busy.has(job.id)) {
      await this.recordWithoutRunning(job, instant, "skipped", `overlap: the previous run of "${job.name}" was still running (overlap: skip)`, trigger);
      return;
    }
    await this.slots.acquire();
    try {
      if (this.stopping) return;
      const now = this.clock.now();
      const run = this.newRun(job, runId, 1, instant, trigger, "running", now);
      // The primary expects to win, so it writes its lease first: should it die right after the
      // claim, the lease still expires and another agent takes over. A standby rarely wins and
      // skips that write (its lease follows the claim; the orphan sweep covers the gap).
      const leaseFirst = rank === 0;
      let won: boolean;
      try {
        if (leaseFirst) await this.store.putLease(leaseOf(run, this.settings.machineId, now + this.settings.leaseMs));
        won = await this.store.insertRun(run);
        if (!won && leaseFirst) await this.store.deleteLease(leaseId(run._id, this.settings.machineId));
      } catch (error) {
        this.health.failed(now, error);
        if (trigger === "schedule") this.missedDuringOutage.push({ job, instant });
        return;
      }
      if (won) await this.execute(job, run, rank, leaseFirst);
    } finally {
      this.slots.release();
    }
  }

  private newRun(job: Job, runId: string, attempt: number, instant: number, trigger: RunTrigger, status: RunStatus, now: number): RunRecord {
    return {
      _id: attemptId(runId, attempt),
      run_id: runId,
      job_id: job.id,
      job_name: job.name,
      scheduled_for: new Date(instant),
      attempt,
      trigger,
      status,
      machine_id: this.settings.machineId,
      ...(this.serial !== null ? { serial: this.serial } : {}),
      claimed_at: new Date(now),
      ...(status === "running" ? { started_at: new Date(now), lease_until: new Date(now + this.settings.leaseMs) } : { finished_at: new Date(now) }),
    };
  }

  /** A skipped or missed occurrence is recorded by the same unique insert, so exactly one reason is kept. */
  private async recordWithoutRunning(job: Job, instant: number, status: "skipped" | "missed", reason: string, trigger: RunTrigger): Promise<void> {
    const run = { ...this.newRun(job, occurrenceId(job.id, instant), 1, instant, trigger, status, this.clock.now()), reason };
    if (await this.store.insertRun(run)) {
      this.log.info(`${job.name} @ ${run.scheduled_for.toISOString()}: ${status} — ${reason}`);
      safely(() => this.observer.runRecorded(run));
    }
  }

  private async execute(job: Job, run: RunRecord, rank: number, leaseWritten: boolean): Promise<void> {
    safely(() => this.observer.runStarted(run, rank));
    const work = executeAttempt(this.executeContext(), job, run, { leaseWritten });
    this.running.set(run._id, work);
    try {
      const outcome = await work;
      safely(() => this.observer.runFinished(outcome));
    } finally {
      this.running.delete(run._id);
    }
  }

  private executeContext(): ExecuteContext {
    return {
      store: this.store,
      clock: this.clock,
      machineId: this.settings.machineId,
      secrets: this.settings.secrets,
      redact: this.redact,
      userAgent: this.settings.userAgent,
      leaseMs: this.settings.leaseMs,
      defaultTz: this.settings.defaultTz,
      log: this.log,
      signal: this.hardStop.signal,
      ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
    };
  }

  private deadManContext() {
    return { ...this.executeContext(), maxAttempts: MAX_ATTEMPTS, lookbackMs: (this.settings.historyDays * 86_400_000) / 2 };
  }

  // ── catch-up (DESIGN §5 misfires) ───────────────────────────────────────────────────────────

  /** The fleet's last sign of life before this start (this machine's earlier runs included); null on a new store. */
  private async lastSeenOfFleet(): Promise<number | null> {
    const machines = await this.store.listMachines();
    return machines.length === 0 ? null : Math.max(...machines.map((m) => m.last_seen.getTime()));
  }

  /** Occurrences that fell while every agent was down: from the fleet's last sign of life to now. */
  private async startupCatchup(fleetLastSeen: number, untilMs: number): Promise<void> {
    const now = this.clock.now();
    for (const job of this.jobSet.jobs.values()) {
      const from = Math.max(now - this.settings.catchupWindowMs, fleetLastSeen - 2 * this.settings.heartbeatMs, this.jobSet.updatedAt.get(job.id) ?? 0);
      const instants = firesBetween(job.schedule, this.tzOf(job), from, untilMs, CATCHUP_CAP);
      if (instants.length > 0) await this.catchUp(job, instants, "no agent was running");
    }
  }

  /** Occurrences this agent could not claim (in time) while the store was unreachable or slow. */
  private async outageCatchup(): Promise<void> {
    this.catchingUp = true;
    const missed = this.missedDuringOutage;
    this.missedDuringOutage = [];
    try {
      await this.catchUpMissed(missed);
    } catch (error) {
      // The store failed again: keep them for the next recovery (unique inserts make a redo safe).
      this.missedDuringOutage.unshift(...missed);
      this.health.failed(this.clock.now(), error);
    } finally {
      this.catchingUp = false;
    }
  }

  private async catchUpMissed(missed: Occurrence[]): Promise<void> {
    const byJob = new Map<string, number[]>();
    for (const { job, instant } of missed) byJob.set(job.id, [...(byJob.get(job.id) ?? []), instant]);
    for (const [id, instants] of byJob) {
      const job = this.jobSet.jobs.get(id);
      if (job) await this.catchUp(job, [...new Set(instants)].sort((a, b) => a - b).slice(-CATCHUP_CAP), "the store was unreachable or answered too late to claim it on time");
    }
  }

  private async catchUp(job: Job, instants: number[], cause: string): Promise<void> {
    const claimed = new Set((await this.store.getRuns(instants.map((at) => occurrenceId(job.id, at)))).map((r) => r._id));
    const missing = instants.filter((at) => !claimed.has(occurrenceId(job.id, at)));
    if (missing.length === 0) return;
    const latest = missing[missing.length - 1]!;
    const busy = new Set<string>();
    for (const instant of missing) {
      const iso = new Date(instant).toISOString();
      if (job.catchup === "all" || (job.catchup === "last" && instant === latest)) {
        this.track(this.claimAndRun(job, instant, "catchup", busy));
      } else if (job.catchup === "last") {
        await this.recordWithoutRunning(job, instant, "missed", `missed: ${cause}; catchup "last" ran only the latest missed occurrence (${new Date(latest).toISOString()})`, "catchup");
      } else {
        await this.recordWithoutRunning(job, instant, "missed", `missed: ${cause} at ${iso}; catchup "skip"`, "catchup");
      }
    }
  }

  // ── heartbeat: serial, machine record, jobs, commands, takeovers ────────────────────────────

  private async heartbeatTick(): Promise<void> {
    this.heartbeatInFlight = true;
    try {
      await this.withinHeartbeatDeadline(this.heartbeat());
      this.health.succeeded(this.clock.now());
      // Apart from the heartbeat: a slow catch-up must not make this agent look dead.
      if (this.missedDuringOutage.length > 0 && !this.catchingUp) this.track(this.outageCatchup());
      this.nextHeartbeatAt = this.clock.now() + this.settings.heartbeatMs;
    } catch (error) {
      this.health.failed(this.clock.now(), error);
      this.nextHeartbeatAt = this.clock.now() + this.health.retryDelayMs(this.settings.heartbeatMs);
    } finally {
      this.heartbeatInFlight = false;
      this.wake.abort();
    }
  }

  /**
   * A heartbeat stuck on a store call that never answers (a half-open connection) must not stop
   * the next ones: past the deadline it counts as a failed heartbeat and the next one is tried.
   */
  private async withinHeartbeatDeadline(work: Promise<void>): Promise<void> {
    const deadlineMs = Math.max(4 * this.settings.heartbeatMs, 10_000);
    const timedOut = new AbortController();
    const done = work.finally(() => timedOut.abort());
    await Promise.race([done, this.clock.sleep(deadlineMs, timedOut.signal).then(() => {
      if (!timedOut.signal.aborted) throw new Error(`heartbeat got no answer from the store within ${deadlineMs / 1000} s`);
    })]);
  }

  private async heartbeat(): Promise<void> {
    const before = this.clock.now();
    const serverTime = (await this.store.serverTime()).getTime();
    const now = this.clock.now();
    const clockOffset = Math.round((before + now) / 2 - serverTime);
    const serials = await this.serials.heartbeat(now);
    this.ranking = rankAmong(serials, this.serialSettings(), now);
    const existing = await this.store.getMachine(this.settings.machineId);
    await this.store.putMachine({
      _id: this.settings.machineId,
      hostname: this.settings.hostname,
      pid: process.pid,
      serial: this.serial,
      status: this.stopping ? "draining" : "running",
      version: this.settings.version,
      started_at: existing && existing.status === "running" && existing.pid === process.pid ? existing.started_at : new Date(this.startedAt),
      last_seen: new Date(now),
      clock_offset_ms: clockOffset,
      invalid_jobs: this.jobSet.invalid.length,
    });
    this.lastHeartbeatAt = now;
    if (this.nextHeartbeatAt === 0) this.nextHeartbeatAt = now + this.settings.heartbeatMs;
    if (this.jobsRevision !== null && (await this.store.getJobsRevision()) !== this.jobsRevision) await this.reloadJobs();
    await this.applyCommands();
    await this.takeOverExpired(now);
    if (!this.stopping) await this.deadman.check(this.jobSet.jobs.values(), this.jobSet.updatedAt, this.deadManContext(), (work) => this.track(work));
    // Not before start-up has loaded the jobs: the sweep decides takeovers by the job set.
    if (this.scheduling && this.ranking.rank === 0 && now - this.lastPruneAt >= PRUNE_EVERY_MS) await this.prune(now);
  }

  private async reloadJobs(): Promise<void> {
    this.jobsRevision = await this.store.getJobsRevision();
    const previous = this.jobSet;
    this.jobSet = await loadJobSet(this.store, Object.keys(this.settings.secrets));
    const now = this.clock.now();
    for (const [id, job] of this.jobSet.jobs) {
      // An unchanged job keeps its place in time; a new or edited one starts from now.
      if (previous.fingerprints.get(id) !== this.jobSet.fingerprints.get(id) || !this.nextAt.has(id)) {
        if (this.scheduling) this.schedule(job, now);
      }
    }
    for (const id of this.nextAt.keys()) if (!this.jobSet.jobs.has(id)) this.nextAt.delete(id);
    const invalidNow = new Set<string>();
    for (const invalid of this.jobSet.invalid) {
      const key = `${invalid.id}:${JSON.stringify(invalid.problems)}`;
      invalidNow.add(key);
      if (this.reportedInvalid.has(key)) continue;
      this.log.error(
        `job "${invalid.name}" (${invalid.id}) is invalid and will not run:\n` + invalid.problems.map((p) => `  ${p.path || "(document)"}: ${p.message}`).join("\n"),
      );
    }
    this.reportedInvalid = invalidNow;
    this.wake.abort();
  }

  private async applyCommands(): Promise<void> {
    const commands = await this.store.listCommands(new Date(this.startedAt - 1000));
    for (const command of commands) {
      if (this.handledCommands.has(command._id)) continue;
      if (command.target !== null && command.target !== this.settings.machineId) continue;
      this.handledCommands.add(command._id);
      let error: string | undefined;
      try {
        await this.applyCommand(command);
      } catch (e) {
        error = this.redact((e as Error).message);
        this.log.error(`command ${command.type} (${command._id}) failed: ${error}`);
      }
      await this.store.insertAck({
        _id: `${command._id}:${this.settings.machineId}`,
        command_id: command._id,
        machine_id: this.settings.machineId,
        acked_at: new Date(this.clock.now()),
        ...(error ? { error } : {}),
      });
    }
  }

  private async applyCommand(command: CommandRecord): Promise<void> {
    this.log.info(`command ${command.type} (${command._id}) received`);
    if (command.type === "reload") {
      if (this.deps.applyJobsFile) await this.deps.applyJobsFile();
      await this.reloadJobs();
    } else if (command.type === "reload-config") {
      if (!this.deps.reloadConfig) return;
      const next = await this.deps.reloadConfig();
      this.settings = { ...next, machineId: this.settings.machineId };
      if (next.maxConcurrentRuns !== this.slots.inUse) this.slots = new Slots(next.maxConcurrentRuns);
      await this.reloadJobs();
    } else if (command.type === "drain") {
      this.stop(`drain command ${command._id}`);
    } else {
      // Written by hand or by a newer version: acknowledged with this error, never guessed at.
      throw new Error(`unknown command type ${JSON.stringify(command.type)}; this agent knows reload, reload-config and drain`);
    }
  }

  private async takeOverExpired(now: number): Promise<void> {
    // The grace lets a holder that just got the store back land its own renewal or result first.
    for (const lease of expiredLeases(await this.store.listLeases(), now, this.settings.heartbeatMs)) {
      if (this.running.has(attemptId(lease.run_id, lease.attempt)) || this.stopping) continue;
      await this.takeOver(lease, now);
    }
  }

  /**
   * Attempts marked running with no lease at all: the holder died between its claim and its first
   * lease write (a standby's claim, which is not preceded by a lease). Run at start and with the
   * hourly sweep, since it reads `job_runs` by status.
   */
  private async sweepOrphans(now: number): Promise<void> {
    const leased = new Set((await this.store.listLeases()).map((l) => attemptId(l.run_id, l.attempt)));
    for (const run of await this.store.listRuns({ status: "running", limit: 1000 })) {
      if (leased.has(run._id) || this.running.has(run._id) || !run.lease_until) continue;
      if (run.lease_until.getTime() + this.settings.heartbeatMs >= now) continue;
      await this.takeOver({ ...leaseOf(run, run.machine_id ?? "unknown", run.lease_until.getTime()) }, now);
    }
  }

  private async takeOver(lease: LeaseRecord, now: number): Promise<void> {
    const run = await this.store.getRun(attemptId(lease.run_id, lease.attempt));
    // A lease without its claim (a primary that lost the race or died before inserting), or left
    // by an attempt that finished or belongs to another machine, is only cleaned away.
    if (!run || run.status !== "running" || run.machine_id !== lease.machine_id) {
      await this.store.deleteLease(lease._id);
      return;
    }
    const job = this.jobSet.jobs.get(run.job_id);
    const next = run.attempt + 1;
    let status: RunStatus = "running";
    let reason: string | undefined;
    if (!job) (status = "skipped"), (reason = `previous attempt lost; job ${run.job_name} no longer exists, is disabled or is invalid`);
    else if (job.on_lost === "skip") (status = "skipped"), (reason = `previous attempt lost; on_lost: "skip"`);
    else if (next > MAX_ATTEMPTS) (status = "skipped"), (reason = `previous attempt lost; no attempt beyond ${MAX_ATTEMPTS}`);
    const base = job ?? ({ id: run.job_id, name: run.job_name } as Job);
    const successor = { ...this.newRun(base, run.run_id, next, run.scheduled_for.getTime(), "takeover", status, now), ...(reason ? { reason } : {}) };
    // The successor's lease comes first: the old holder, should it still be alive, learns from
    // `leases` alone that it has been fenced off (see isFenced).
    const successorLease = leaseOf(successor, this.settings.machineId, now + this.settings.leaseMs);
    await this.store.putLease(successorLease);
    if (!(await this.store.insertRun(successor))) {
      await this.store.deleteLease(successorLease._id); // another agent took it over first
      return;
    }
    if (status !== "running") await this.store.deleteLease(successorLease._id);
    await this.store.updateRun(run._id, {
      status: "lost",
      finished_at: new Date(now),
      reason: `lease expired at ${lease.lease_until.toISOString()} (${lease.machine_id} stopped renewing); attempt ${next} claimed by ${this.settings.machineId}`,
    });
    await this.store.deleteLease(lease._id);
    safely(() => this.observer.takeover(run, successor));
    if (status !== "running") safely(() => this.observer.runRecorded(successor));
    this.log.warn(`took over ${run.run_id}: attempt ${run.attempt} on ${lease.machine_id} lost its lease; attempt ${next} ${status === "running" ? "runs here" : `skipped (${reason})`}`);
    if (job && status === "running") this.track(this.runTakenOver(job, successor));
  }

  private async runTakenOver(job: Job, run: RunRecord): Promise<void> {
    await this.slots.acquire();
    try {
      await this.execute(job, run, 0, true); // takeOver wrote the successor's lease before claiming
    } finally {
      this.slots.release();
    }
  }

  private async prune(now: number): Promise<void> {
    this.lastPruneAt = now;
    await this.sweepOrphans(now);
    const runs = await this.store.pruneRuns(new Date(now - this.settings.historyDays * 86_400_000));
    const commands = await this.store.pruneCommands(new Date(now - 86_400_000));
    if (runs + commands > 0) this.log.info(`history sweep: deleted ${runs} run record(s) older than ${this.settings.historyDays} days and ${commands} old command(s)`);
  }

  // ── lifecycle ───────────────────────────────────────────────────────────────────────────────

  private serialSettings() {
    return { machineId: this.settings.machineId, maxSerial: this.settings.maxSerial, deadAfterMs: this.settings.deadAfterMs };
  }

  /** How long after an instant the last standby would try: occurrences older than this are catch-up. */
  private staggerWindowMs(): number {
    return this.ranking.live * this.settings.failoverStepMs + 1000;
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch((error) => this.log.error(`internal error: ${(error as Error)?.stack ?? error}`));
    this.inFlight.add(tracked);
    tracked.finally(() => this.inFlight.delete(tracked));
  }

  /** Retries a start-up step until the store answers (or the agent is told to stop). */
  private async untilStoreAnswers<T>(step: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const result = await step();
        this.health.succeeded(this.clock.now());
        return result;
      } catch (error) {
        this.health.failed(this.clock.now(), error);
        if (this.stopping) throw error;
        await this.clock.sleep(this.health.retryDelayMs(this.settings.heartbeatMs), this.stopSignal.signal);
      }
    }
  }

  private async shutdown(): Promise<void> {
    const running = [...this.running.values()];
    if (running.length > 0) {
      const deadline = new AbortController();
      const finished = Promise.allSettled(running).then(() => deadline.abort());
      await this.clock.sleep(this.settings.shutdownTimeoutMs, deadline.signal);
      if (this.running.size > 0) {
        this.log.warn(`shutdown deadline passed: aborting ${this.running.size} attempt(s)`);
        this.hardStop.abort(new Error("agent shut down"));
        await finished;
      }
    }
    // Claims, heartbeats and catch-ups still under way get a short grace, not a veto over stopping.
    const settled = new AbortController();
    void Promise.allSettled([...this.inFlight]).then(() => settled.abort());
    await this.clock.sleep(Math.min(this.settings.shutdownTimeoutMs, 5000), settled.signal);
    if (!settled.signal.aborted) this.log.warn(`stopping with ${this.inFlight.size} store operation(s) still unanswered`);
    try {
      await this.serials.release();
      const machine = await this.store.getMachine(this.settings.machineId);
      if (machine) await this.store.putMachine({ ...machine, status: "stopped", serial: null, last_seen: new Date(this.clock.now()) });
    } catch (error) {
      this.log.warn(`could not release the serial on stop (${(error as Error).message}); others take over after dead_after_sec`);
    }
    this.log.info(`stopped (${this.stopReason})`);
  }
}
