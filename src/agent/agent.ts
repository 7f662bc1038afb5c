import type { FlowLimit } from "../config/load.ts";
import type { Clock } from "../core/clock.ts";
import { ConfigError, StoreError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { executeAttempt, FinalWriter, type AttemptFence, type ExecuteContext, type FinalSink } from "../coordinator/attempt.ts";
import { planCatchup } from "../coordinator/catchup.ts";
import { claimBatch, newNonce } from "../coordinator/claim.ts";
import { DeadManSwitch } from "../coordinator/deadman.ts";
import { deadSessions, Fence, isLiveMachine, owedSessions, type DeadSession } from "../coordinator/liveness.ts";
import { attemptId, nextAttemptId, occurrenceId } from "../coordinator/occurrence.ts";
import { firingOrder, placementKeyOf, positionOf, type Member, type PlacementMode } from "../coordinator/placement.ts";
import { SerialKeeper } from "../coordinator/serials.ts";
import { takeOverSession } from "../coordinator/takeover.ts";
import { deriveTiming, overlapGuardMs, staggerWindowMs, type Timing } from "../coordinator/timing.ts";
import { TRYING_POSITIONS, unclaimed, UNTRIED_CAP, UntriedOccurrences } from "../coordinator/untried.ts";
import type { HttpSettings } from "../executor/chain.ts";
import type { SecretScope } from "../executor/secret-hosts.ts";
import { createRedactor } from "../core/redact.ts";
import { pausedAt, resumesAt } from "../jobs/pause.ts";
import type { Job } from "../jobs/types.ts";
import { NOOP_OBSERVER, ObservedStoreHealth, safely, type AgentObserver, type AgentSnapshot } from "../observe/observer.ts";
import { jitterOffsetMs } from "../schedule/jitter.ts";
import { firesBetween, nextFireAfter } from "../schedule/next.ts";
import type { CommandRecord, FinalWrite, MachineRecord, RunRecord, RunStatus, RunTrigger, Store } from "../store/types.ts";
import { FlowLimits } from "./flow-limits.ts";
import { loadJobSet, type JobSet } from "./job-set.ts";
import { Slots } from "./slots.ts";

export type { AgentSnapshot } from "../observe/observer.ts";

/** Settings the agent runs with; `reload-config` may replace the reloadable ones. */
export interface AgentSettings {
  machineId: string;
  hostname: string;
  version: string;
  maxSerial: number;
  heartbeatMs: number;
  deadAfterMs: number;
  failoverStepMs: number;
  catchupWindowMs: number;
  historyDays: number;
  maxConcurrentRuns: number;
  shutdownTimeoutMs: number;
  defaultTz: string;
  secrets: Record<string, string>;
  /** Config vars, secret hosts and signing keys, passed to every request. */
  http?: HttpSettings;
  /** Validation's view of the secrets (values and hosts), to refuse a job that sends one elsewhere. */
  secretScope?: SecretScope;
  userAgent: string;
  placement?: PlacementMode;
  tags?: Record<string, string>;
  /** Config `limits`: flow control shared by the jobs that name one. */
  limits?: Record<string, FlowLimit>;
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

/** The coordination protocol version this agent speaks (docs/protocol.md, "Upgrades"). */
export const PROTOCOL_VERSION = 2;
/** How long a stopping agent waits for aborted attempts and for its last results to be stored. */
const STOP_GRACE_MS = 5000;
/** A `jobs trigger` command is run only this soon after it was sent (its CLI waits about as long). */
export const TRIGGER_COMMAND_TTL_MS = 60_000;
/** While a stop waits for running attempts, what it waits for is logged this often. */
const STOP_REPORT_EVERY_MS = 5000;
const CATCHUP_RECORD_CAP = 1000;
/** Earlier sessions of this machine listed as `inherited` at most (a crash loop that never reaches its takeover). */
const MAX_OWED_SESSIONS = 100;

interface Occurrence {
  job: Job;
  instant: number;
}

interface RunningAttempt {
  job: Job;
  run: RunRecord;
  done: Promise<void>;
  /** Its requests are over; only its final record is still being written. */
  finished: boolean;
}

/** The fleet as the last heartbeat read it: it decides timing only, never who runs. */
interface FleetView {
  machines: Map<string, MachineRecord>;
  members: Member[];
}

/**
 * The agent: sleeps until the next due instant, heartbeat or judge timer; fires each occurrence at
 * its place in the job's firing order with one batched claim; runs what it won under its fence;
 * heartbeats (membership, job catalog, command inbox); takes over dead sessions; stops gracefully.
 * The protocol itself lives in src/coordinator and is written down in docs/protocol.md.
 */
export class Agent {
  private settings: AgentSettings;
  private timing: Timing;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly serials: SerialKeeper;
  private readonly health: ObservedStoreHealth;
  private readonly observer: AgentObserver;
  private readonly deadman: DeadManSwitch;
  private readonly fence: Fence;
  private readonly finals: FinalWriter;
  private lastHeartbeatAt: number | null = null;
  private slots: Slots;
  private readonly flow: FlowLimits;
  /** When an occurrence last could not get a run slot in time (saturation, shown by /healthz). */
  private slotSkippedAt: number | null = null;
  private jobSet: JobSet = { jobs: new Map(), invalid: [], fingerprints: new Map(), updatedAt: new Map() };
  private readonly nextAt = new Map<string, number>();
  private view: FleetView = { machines: new Map(), members: [] };
  private jobsRevision: string | null = null;
  /** The commands revision of the last listing of commands, and when it was made. */
  private listedCommandsRevision: string | null = null;
  private commandsListedAt = Number.NEGATIVE_INFINITY;
  private readonly startedAt: number;
  private readonly appliedCommands = new Set<string>();
  private readonly unacked = new Map<string, { command: CommandRecord; error?: string }>();
  private readonly running = new Map<string, RunningAttempt>();
  /** Occurrence keys this agent already recorded `skipped` ahead of time (overlap guard). */
  private readonly guarded = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly handledSessions = new Set<string>();
  /**
   * Earlier sessions of this machine (the process before a restart, a lapsed fence) whose attempts
   * this agent has still to take over, with what each published: listed in the heartbeat as
   * `inherited` until then, so that should this agent die first, its taker takes those too.
   */
  private readonly owed = new Map<string, { running: NonNullable<MachineRecord["running"]>; why: string }>();
  /** Jobs no live agent may run, by job id: one `missed` record per gap. */
  private readonly unplaceable = new Set<string>();
  private missedDuringOutage: Occurrence[] = [];
  /** Occurrences this agent was too far down their order to try: checked once the tryers had their turn. */
  private readonly untried = new UntriedOccurrences();
  private checkingUntried = false;
  private nextHeartbeatAt = 0;
  private nextHousekeepingAt = 0;
  private heartbeatInFlight = false;
  private catchingUp = false;
  private reportedInvalid = new Set<string>();
  private v1AgentsSeen = false;
  private zonesWarned = "";
  private claimsStoppedAt: number | null = null;
  /** Set once start-up has placed every job in time; later reloads schedule new jobs from now. */
  private scheduling = false;
  private jobsLoaded = false;
  private stopping = false;
  private stopReason = "";
  private wake = new AbortController();
  private readonly stopSignal = new AbortController();
  private readonly hardStop = new AbortController();
  private redact: (text: string) => string;

  constructor(private readonly deps: AgentDeps) {
    this.settings = deps.settings;
    this.timing = deriveTiming(deps.settings);
    this.store = deps.store;
    this.clock = deps.clock;
    this.log = deps.log;
    this.startedAt = deps.clock.now();
    this.observer = deps.observer ?? NOOP_OBSERVER;
    this.health = new ObservedStoreHealth(deps.log, this.observer);
    this.deadman = new DeadManSwitch(this.observer);
    this.slots = new Slots(deps.settings.maxConcurrentRuns);
    this.flow = new FlowLimits(deps.settings.limits ?? {}, deps.clock);
    this.serials = new SerialKeeper(deps.store, () => this.serialSettings(), deps.log);
    this.redact = createRedactor(Object.values(deps.settings.secrets));
    this.fence = new Fence(this.timing, deps.clock, (session) => this.onFenceLapse(session));
    this.finals = new FinalWriter(deps.store, deps.clock, deps.log, this.timing.flushWindowMs, deps.store.finalWritesGuarded ? {} : { superseded: (finals) => this.supersededOf(finals), lateAfterMs: this.timing.roundTripMs, recheck: () => !this.fence.mayWrite() });
  }

  get serial(): number | null {
    return this.serials.serial;
  }

  private get mode(): PlacementMode {
    return this.settings.placement ?? "spread";
  }

  snapshot(): AgentSnapshot {
    const s = this.settings;
    const order = this.mode === "serial" ? firingOrder("", this.view.members, "serial") : [];
    const rank = this.mode === "serial" ? Math.max(0, order.indexOf(s.machineId)) : 0;
    return {
      machineId: s.machineId,
      hostname: s.hostname,
      version: s.version,
      serial: this.serial,
      placement: this.mode,
      rank,
      liveAgents: Math.max(1, this.view.members.length),
      phase: this.stopping ? "stopping" : this.scheduling ? "running" : "starting",
      store: { kind: this.store.kind, location: this.store.location, reachable: !this.health.isDown, downSince: this.health.outageSince, lastError: this.health.lastError },
      startedAt: this.startedAt,
      lastHeartbeatAt: this.lastHeartbeatAt,
      runningAttempts: this.running.size,
      slots: { inUse: this.slots.inUse, size: this.slots.size, queued: this.slots.queued, lastSkippedAt: this.slotSkippedAt },
      jobs: this.jobSet.jobs.size,
      invalidJobs: this.jobSet.invalid.length,
      heartbeatMs: s.heartbeatMs,
      deadAfterMs: s.deadAfterMs,
      defaultTz: s.defaultTz,
      secretKeys: [...Object.keys(s.secrets), ...Object.keys(s.http?.vars ?? {})],
    };
  }

  /** Runs until `stop()` (signal, drain command); resolves once work is finished and the serial released. */
  async run(): Promise<void> {
    const predecessor = await this.untilStoreAnswers(() => this.readPredecessor());
    const fleetLastSeen = await this.untilStoreAnswers(() => this.lastSeenOfFleet());
    if (predecessor) {
      this.view.machines.set(predecessor._id, predecessor);
      for (const session of owedSessions(predecessor)) this.owe(session, session === predecessor.session ? (predecessor.running ?? []) : [], `${this.settings.machineId} restarted (new session)`);
    }
    await this.untilStoreAnswers(() => this.heartbeat());
    if (this.deps.applyJobsFile) await this.deps.applyJobsFile();
    await this.untilStoreAnswers(() => this.reloadJobs());
    this.jobsLoaded = true;
    // Ready only now: placement counts an agent once its jobs are loaded.
    await this.untilStoreAnswers(() => this.heartbeat());
    const now = this.clock.now();
    const grace = this.staggerWindow();
    // Occurrences a moment old may still be waiting for this agent's turn; a job never fires for
    // an instant before FleetCron wrote it.
    for (const job of this.jobSet.jobs.values()) this.schedule(job, Math.max(now - grace - this.jitterOf(job), this.jobSet.updatedAt.get(job.id) ?? 0));
    this.scheduling = true;
    this.judgeFleet();
    this.nextHousekeepingAt = now + this.timing.heartbeatMs;
    this.log.info(
      `agent ${this.settings.machineId} running: serial ${this.serial ?? "none"}, ${this.mode} placement, ${this.jobSet.jobs.size} job(s)` +
        (this.jobSet.invalid.length ? `, ${this.jobSet.invalid.length} invalid job(s) skipped` : "") +
        `, ${this.view.members.length} live agent(s), store ${this.store.kind} ${this.store.location}`,
    );
    if (fleetLastSeen !== null) this.track(this.startupCatchup(fleetLastSeen, now - grace));

    while (!this.stopping) {
      const tick = this.clock.now();
      if (tick >= this.nextHeartbeatAt && !this.heartbeatInFlight) this.track(this.heartbeatTick());
      if (tick >= this.nextHousekeepingAt) {
        this.nextHousekeepingAt = tick + this.timing.housekeepingEveryMs;
        this.track(this.housekeeping(tick));
      }
      this.dispatchDue(tick);
      const guardAt = this.guardOverlaps(tick);
      // A heartbeat in flight wakes the loop when it ends; until then its time is not a reason to wake.
      const heartbeatAt = this.heartbeatInFlight ? Number.POSITIVE_INFINITY : this.nextHeartbeatAt;
      const until = Math.min(heartbeatAt, this.earliestDue() - this.timing.claimLeadMs, guardAt, this.nextHousekeepingAt);
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
    this.claimsStoppedAt = this.clock.now();
    this.log.info(`stopping (${reason}): no new claims; finishing ${this.running.size} running attempt(s)`);
    this.stopSignal.abort();
  }

  // ── schedule and dispatch ───────────────────────────────────────────────────────────────────

  private tzOf(job: Job): string {
    return job.tz ?? this.settings.defaultTz;
  }

  /** The job's fixed `jitter_sec` offset: it fires this long after each instant. */
  private jitterOf(job: Job): number {
    return jitterOffsetMs(job.id, job.jitter_ms);
  }

  /** When an occurrence fires: its instant, plus the job's jitter offset. */
  private fireAt(job: Job, instant: number): number {
    return instant + this.jitterOf(job);
  }

  /** Schedules the job's first occurrence whose instant is after `afterMs`. */
  private schedule(job: Job, afterMs: number): void {
    // A paused job is not woken for occurrences it will not fire: next at `until`, or not at all
    // until `jobs resume` changes the document (and the reload schedules it again).
    const resumeAt = job.paused ? resumesAt(job) : undefined;
    if (resumeAt === null) {
      this.nextAt.delete(job.id);
      return;
    }
    const next = nextFireAfter(job.schedule, this.tzOf(job), resumeAt === undefined ? afterMs : Math.max(afterMs, resumeAt - 1));
    if (next === null) this.nextAt.delete(job.id);
    else this.nextAt.set(job.id, next);
  }

  private earliestDue(): number {
    let earliest = Number.POSITIVE_INFINITY;
    for (const [id, at] of this.nextAt) {
      const job = this.jobSet.jobs.get(id);
      const fire = job ? this.fireAt(job, at) : at;
      if (fire < earliest) earliest = fire;
    }
    return earliest;
  }

  /** This agent's place in a job's firing order (null: not for this agent), from the last view. */
  private positionFor(job: Job): number | null {
    return positionOf(this.settings.machineId, placementKeyOf(job), this.view.members, this.mode, job.run_on);
  }

  private dispatchDue(now: number): void {
    // One batch per (instant, place in the order): all of an agent's claims for one moment.
    const groups = new Map<string, { instant: number; fireAt: number; position: number; jobs: Job[] }>();
    for (const [id, at] of this.nextAt) {
      const job = this.jobSet.jobs.get(id);
      if (!job) {
        this.nextAt.delete(id);
        continue;
      }
      const fireAt = this.fireAt(job, at);
      if (fireAt > now + this.timing.claimLeadMs) continue;
      this.schedule(job, at);
      if (this.v1AgentsSeen) continue;
      // Paused (`jobs pause`): no claim and no record; every agent decides this from the instant alone.
      if (pausedAt(job, at)) continue;
      const position = this.positionFor(job);
      if (position === null) {
        this.noteUnplaceable(job, at);
        continue;
      }
      this.unplaceable.delete(job.id);
      if (position >= TRYING_POSITIONS) {
        // Not tried from here: a heartbeat after the tryers' turns checks that one of them claimed it.
        // In an outage the tryers' own catch-up covers it, so it is not noted then.
        if (!this.health.isDown) this.untried.note({ job, instant: at, settledAt: fireAt + this.settleMs() });
        continue;
      }
      const key = `${at}:${fireAt}:${position}`;
      const group = groups.get(key);
      if (group) group.jobs.push(job);
      else groups.set(key, { instant: at, fireAt, position, jobs: [job] });
    }
    for (const { instant, fireAt, position, jobs } of groups.values()) this.track(this.fireGroup(instant, fireAt, position, jobs));
  }

  /**
   * A job that no live agent may fire (`run_on` matches none): the first agent of its order among
   * all live agents records the first occurrence of the gap `missed`, once, after every agent had
   * its turn (docs/protocol.md, "Placement").
   */
  private noteUnplaceable(job: Job, instant: number): void {
    if (this.unplaceable.has(job.id)) return;
    if (firingOrder(placementKeyOf(job), this.view.members, this.mode, job.run_on).length > 0) return;
    if (firingOrder(placementKeyOf(job), this.view.members, this.mode)[0] !== this.settings.machineId) return;
    this.unplaceable.add(job.id);
    const wanted = Object.entries(job.run_on ?? {}).map(([k, v]) => `${k}=${v}`).join(", ");
    this.track(
      this.recordWithoutRunning([{ job, instant }], "missed", `missed: no live agent may run it (run_on ${wanted}); later occurrences are not recorded until one can`, "schedule"),
    );
  }

  /** All of one agent's occurrences at one instant and place share one wait and one batched claim. */
  private async fireGroup(instant: number, fireAt: number, position: number, dispatched: Job[]): Promise<void> {
    const turn = fireAt + position * this.timing.failoverStepMs;
    const delay = turn - this.timing.claimLeadMs - this.clock.now();
    if (delay > 0) await this.clock.sleep(delay, this.stopSignal.signal);
    if (this.stopping) return;
    // The job as it is now: one deleted, disabled or edited during the wait is not fired as it was.
    const jobs = dispatched.filter((job) => this.jobSet.jobs.get(job.id) === job);
    if (jobs.length === 0) return;
    const occurrences = jobs.map((job) => ({ job, instant }));
    if (this.health.isDown || !this.fence.mayWrite() || this.clock.now() - fireAt > this.staggerWindow() + this.timing.lateToleranceMs) {
      // Unconfirmed liveness, an unreachable store, or an answer too late for an on-time fire:
      // these follow the job's catch-up policy instead of all firing at once later.
      this.missedDuringOutage.push(...occurrences);
      return;
    }
    await this.claimAndRun(occurrences, "schedule", position, turn);
  }

  /**
   * One batched claim for occurrences of this agent: `running` claims, and `skipped` records for
   * those that would overlap a run still going here or anywhere the fleet published.
   */
  private async claimAndRun(occurrences: Occurrence[], trigger: RunTrigger, position: number, turn = 0): Promise<void> {
    const now = this.clock.now();
    const startAt = Math.max(now, turn);
    const records: RunRecord[] = [];
    // Attempts per job here, counted once for the batch (a burst claims thousands at once).
    const here = this.attemptsByJob();
    for (const { job, instant } of occurrences) {
      const key = occurrenceId(job.id, instant);
      if (this.guarded.delete(key)) continue; // already recorded skipped ahead of time
      const count = (here.get(job.id) ?? 0) + 1;
      if (job.overlap === "skip" && this.runningHere(job.id, instant)) {
        records.push({ ...this.newRun(job, key, 1, instant, trigger, "skipped", now), reason: `overlap: the previous run of "${job.name}" was still running (overlap: skip)` });
      } else if (job.overlap === "allow" && count > this.maxParallelOf(job)) {
        const max = this.maxParallelOf(job);
        records.push({ ...this.newRun(job, key, 1, instant, trigger, "skipped", now), reason: `max_parallel: ${max} attempt(s) of "${job.name}" already run or wait here (max_parallel ${max})` });
      } else {
        here.set(job.id, count);
        records.push({ ...this.newRun(job, key, 1, instant, trigger, "running", now), started_at: new Date(startAt) });
      }
    }
    if (records.length === 0) return;
    const session = this.fence.session;
    const results = await claimBatch(this.store, records);
    const failed = results.filter((r) => r.outcome === "failed");
    if (failed.length > 0) {
      this.health.failed(this.clock.now(), new StoreError(`claims of ${failed.length} occurrence(s) could not be confirmed`));
      this.missedDuringOutage.push(...failed.map((r) => occurrences.find((o) => occurrenceId(o.job.id, o.instant) === r.run.run_id)!).filter(Boolean));
    } else {
      this.health.succeeded(this.clock.now());
    }
    for (const { run, outcome } of results) {
      if (outcome !== "won") continue;
      const job = occurrences.find((o) => o.job.id === run.job_id)!.job;
      if (run.status !== "running") {
        this.log.info(`${job.name} @ ${run.scheduled_for.toISOString()}: ${run.status} — ${run.reason}`);
        safely(() => this.observer.runRecorded(run));
        continue;
      }
      // A claim acknowledged after the fence deadline never runs: its session is dead, and the
      // takeover of that session re-runs it (docs/protocol.md, "Claims").
      if (this.fence.session !== session || !this.fence.mayWrite()) continue;
      this.track(this.runAttempt(job, run, position, startAt));
    }
  }

  /**
   * Whether an attempt of the job that started before `instant` still runs here. A run elsewhere is
   * not looked up: its runner, not being the owner, records the next occurrence skipped ahead of
   * time (guardOverlaps); the heartbeats' lists are too old to say whether it still runs now.
   */
  private runningHere(jobId: string, instant: number): boolean {
    for (const { run, finished } of this.running.values()) if (!finished && run.job_id === jobId && run.scheduled_for.getTime() < instant) return true;
    return false;
  }

  /** Attempts per job that this agent runs or holds waiting for a slot or a limit now. */
  private attemptsByJob(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const { run, finished } of this.running.values()) if (!finished) counts.set(run.job_id, (counts.get(run.job_id) ?? 0) + 1);
    return counts;
  }

  /**
   * An `overlap: allow` job's share of `max_concurrent_runs` (docs/protocol.md, "Slots"): its
   * `max_parallel`, else half the slots, so one job against a slow target cannot hold every slot.
   * (With overlap skip the overlap rule already keeps it to one attempt at a time.)
   */
  private maxParallelOf(job: Job): number {
    return job.max_parallel ?? Math.max(1, Math.floor(this.settings.maxConcurrentRuns / 2));
  }

  /**
   * Overlap without a read (docs/protocol.md, "Overlap"): while a run of an `overlap: skip` job is
   * still going here, the next occurrence is recorded `skipped` G before its instant, so no other
   * agent starts it. Returns when to look again.
   */
  private guardOverlaps(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    if (!this.fence.mayWrite()) return next; // nothing can be recorded now; claims decide later
    const due: Occurrence[] = [];
    const seen = new Set<string>();
    for (const { job, finished } of this.running.values()) {
      if (finished || job.overlap !== "skip" || seen.has(job.id)) continue;
      seen.add(job.id);
      // The job's owner decides its next occurrence from what it runs, at the claim itself; only a
      // runner that is not the owner (the job moved, or it fired as a standby) must tell the fleet.
      if (this.positionFor(job) === 0) continue;
      const at = this.nextAt.get(job.id);
      if (at === undefined) continue;
      const after = nextFireAfter(job.schedule, this.tzOf(job), at);
      const guardAt = this.fireAt(job, at) - overlapGuardMs(this.timing, after === null ? 60_000 : after - at, this.lastRoundTripMs);
      const key = occurrenceId(job.id, at);
      if (this.guarded.has(key)) continue;
      if (guardAt <= now) {
        this.guarded.add(key);
        due.push({ job, instant: at });
      } else next = Math.min(next, guardAt);
    }
    if (due.length > 0) {
      const written = this.recordWithoutRunning(due, "skipped", "overlap: the previous run was still running (overlap: skip)", "schedule", true);
      // Not recorded: the occurrence is claimed (or skipped) as usual at its instant.
      this.track(written.catch((error) => {
        for (const o of due) this.guarded.delete(occurrenceId(o.job.id, o.instant));
        throw error;
      }));
    }
    return next;
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
      session: this.fence.session,
      nonce: newNonce(),
      claimed_at: new Date(now),
      ...(status === "running" ? { started_at: new Date(now) } : { finished_at: new Date(now) }),
    };
  }

  /**
   * Skipped or missed occurrences, recorded by the same unique insert, so exactly one reason is
   * kept. Throws a StoreError when a record could not be confirmed, so catch-up keeps it for later.
   */
  private async recordWithoutRunning(occurrences: Occurrence[], status: "skipped" | "missed", reason: string | ((o: Occurrence) => string), trigger: RunTrigger, quiet = false): Promise<void> {
    const now = this.clock.now();
    const records = occurrences.map((o) => ({ ...this.newRun(o.job, occurrenceId(o.job.id, o.instant), 1, o.instant, trigger, status, now), reason: typeof reason === "string" ? reason : reason(o) }));
    let failed = 0;
    for (const { run, outcome } of await claimBatch(this.store, records)) {
      if (outcome === "failed") failed++;
      if (outcome !== "won") continue;
      if (!quiet || records.length <= 3) this.log.info(`${run.job_name} @ ${run.scheduled_for.toISOString()}: ${status} — ${run.reason}`);
      safely(() => this.observer.runRecorded(run));
    }
    if (failed > 0) throw new StoreError(`${failed} ${status} record(s) could not be written`);
  }

  private attemptFence(): AttemptFence {
    // The session's signal only: a hard stop reaches the attempt through its context and ends it
    // as an error that is recorded, while a lapsed fence ends it unrecorded, for the taker.
    const session = this.fence.session;
    return {
      signal: this.fence.signal,
      mayWrite: () => (this.fence.session === session && this.fence.mayWrite() ? null : "this agent's heartbeat is not confirmed (fence deadline)"),
    };
  }

  /** Runs a won attempt in a slot; listed in the heartbeat (its lease) from now until it ends. */
  private runAttempt(job: Job, run: RunRecord, position: number, notBefore = 0): Promise<void> {
    const fence = this.attemptFence();
    const entry: RunningAttempt = { job, run, done: Promise.resolve(), finished: false };
    this.running.set(run._id, entry);
    let slotHeld = false;
    const releaseSlot = () => {
      if (slotHeld) this.slots.release();
      slotHeld = false;
    };
    // The slot and the flow limit's permit are for requests: both are freed when the result is
    // handed to the writer, not when the (batched) write lands. The attempt stays listed in the
    // heartbeat until then.
    let limitRelease = () => {};
    const sink = {
      write: (final: FinalWrite) => {
        entry.finished = true;
        releaseSlot();
        limitRelease();
        return this.writeFinal(run, final);
      },
    };
    entry.done = (async () => {
      try {
        // Claimed a moment before its turn: the request leaves at the turn (a stop does not cut
        // this short: the claim is won and is run). A limit counts starts from there.
        const early = notBefore - this.clock.now();
        if (early > 0) await this.clock.sleep(early);
        // A limit first, then a slot: waiting for a limit must not hold a slot others could use.
        const limited = await this.waitForLimit(job, fence.signal);
        limitRelease = limited.release;
        slotHeld = await this.acquireSlot(job, run);
        if (!slotHeld) return await this.skipForNoSlot(job, run, sink);
        // Lateness counts from the claim (started_at), so a wait for a limit is not counted in it:
        // the record says how long it was (waited_ms).
        safely(() => this.observer.runStarted(run, position));
        const limitedSink = job.limit === undefined ? sink : { write: (final: FinalWrite) => sink.write({ ...final, patch: { ...final.patch, limit: job.limit, waited_ms: limited.waitedMs } }) };
        const outcome = await executeAttempt(this.executeContext(), job, run, fence, limitedSink);
        safely(() => this.observer.runFinished(outcome));
      } finally {
        releaseSlot();
        limitRelease();
        this.running.delete(run._id);
      }
    })();
    return entry.done;
  }

  /** Waits for the job's flow-control limit, if it names one this agent knows. */
  private async waitForLimit(job: Job, fenced: AbortSignal): Promise<{ waitedMs: number; release: () => void }> {
    if (job.limit === undefined || !this.flow.has(job.limit)) return { waitedMs: 0, release: () => {} };
    try {
      return await this.flow.acquire(job.limit, AbortSignal.any([fenced, this.hardStop.signal]));
    } catch {
      // Fenced or stopped while waiting: the attempt goes on to end at once (lost or stopped).
      return { waitedMs: 0, release: () => {} };
    }
  }

  /**
   * A slot, waited for no longer than the job's interval (at most a minute): an occurrence that
   * cannot get one by then is recorded skipped rather than piling up behind a slow job.
   */
  private async acquireSlot(job: Job, run: RunRecord): Promise<boolean> {
    // A free slot is taken at once: no timer is armed for the common case.
    if (this.slots.inUse < this.slots.size) return this.slots.acquire();
    const instant = run.scheduled_for.getTime();
    const next = nextFireAfter(job.schedule, this.tzOf(job), instant);
    const boundMs = Math.min(this.timing.slotWaitMaxMs, Math.max(1000, next === null ? this.timing.slotWaitMaxMs : next - instant));
    const timedOut = new AbortController();
    const acquired = new AbortController();
    void this.clock.sleep(boundMs, AbortSignal.any([acquired.signal, this.hardStop.signal])).then(() => timedOut.abort());
    const held = await this.slots.acquire(timedOut.signal);
    acquired.abort();
    return held;
  }

  private async skipForNoSlot(job: Job, run: RunRecord, sink: FinalSink): Promise<void> {
    const now = this.clock.now();
    this.slotSkippedAt = now;
    const reason = `no free run slot in time: all ${this.slots.size} of max_concurrent_runs were busy (${this.slots.queued} more waiting); raise max_concurrent_runs or lower the jobs' max_parallel`;
    this.log.warn(`${job.name} @ ${run.scheduled_for.toISOString()}: skipped — ${reason}`);
    await sink.write({ id: run._id, patch: { status: "skipped", reason, finished_at: new Date(now), duration_ms: 0 } });
    safely(() => this.observer.runRecorded({ ...run, status: "skipped", reason }));
  }

  /**
   * A result of this session goes to the batched writer. One of an earlier session (the fence
   * lapsed while it was written) is dropped when a takeover already claimed the next attempt:
   * on a store whose filtered update is not atomic (FerretDB v1) it could otherwise turn `lost`
   * back into `success` (docs/protocol.md, "Final writes").
   */
  private async writeFinal(run: RunRecord, final: FinalWrite): Promise<void> {
    // A process thawed past its fence deadline may read a buffered answer before its fence timer
    // runs: the deadline is checked here too.
    this.fence.lapseIfPast();
    if (run.session !== this.fence.session) {
      try {
        if ((await this.supersededOf([final])).size > 0) {
          this.log.warn(`${run._id}: finished after this agent's fence deadline and attempt ${run.attempt + 1} was taken over; its result (${final.patch.status}) is not recorded`);
          return;
        }
        // Written at once, not a flush window later: the check above must still hold when it lands.
        await this.store.finishRuns([final]);
        // Where the final update is not guarded, a takeover between the check and the write would
        // have its lost mark overwritten: the writer looks once more and puts the mark back.
        if (!this.store.finalWritesGuarded) await this.finals.restoreLostMarks([final]);
        return;
      } catch {
        // Unknown: handed to the writer, which retries (and whose filtered update, where the store
        // has one, still refuses a record already marked lost).
      }
    }
    await this.finals.write(final);
  }

  /** Which of these attempts a takeover already followed with a next attempt (one read). */
  private async supersededOf(finals: FinalWrite[]): Promise<Set<string>> {
    const next = new Map(finals.map((f) => [nextAttemptId(f.id), f.id]));
    const found = await this.store.getRuns([...next.keys()]);
    return new Set(found.map((r) => next.get(r._id)!).filter(Boolean));
  }

  private executeContext(): ExecuteContext {
    return {
      store: this.store,
      clock: this.clock,
      machineId: this.settings.machineId,
      secrets: this.settings.secrets,
      redact: this.redact,
      userAgent: this.settings.userAgent,
      defaultTz: this.settings.defaultTz,
      log: this.log,
      signal: this.hardStop.signal,
      ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
      ...(this.settings.http ? { http: this.settings.http } : {}),
    };
  }

  private deadManContext() {
    return { ...this.executeContext(), maxAttempts: this.timing.maxAttempts, lookbackMs: (this.settings.historyDays * 86_400_000) / 2 };
  }

  // ── catch-up (docs/protocol.md, "Catch-up") ─────────────────────────────────────────────────

  /** A restarted machine's earlier record, read before its first heartbeat replaces it. */
  private async readPredecessor(): Promise<MachineRecord | null> {
    const before = await this.store.getMachine(this.settings.machineId);
    if (!before?.session || before.status === "stopped") return before;
    const now = (await this.store.serverTime()).getTime();
    const fresh = now - before.last_seen.getTime() < this.timing.deadAfterMs;
    if (fresh && before.hostname !== this.settings.hostname) {
      throw new DuplicateMachineError(
        `machine id "${this.settings.machineId}" is in use by a live agent on ${before.hostname} (heard from ${Math.round((now - before.last_seen.getTime()) / 1000)} s ago): give each machine its own machine_id`,
      );
    }
    return before;
  }

  /** The fleet's last sign of claiming before this start (this machine's earlier runs included); null on a new store. */
  private async lastSeenOfFleet(): Promise<number | null> {
    const machines = await this.store.listMachines();
    if (machines.length === 0) return null;
    return Math.max(...machines.map((m) => Math.min(m.last_seen.getTime(), m.claims_stopped_at?.getTime() ?? Number.POSITIVE_INFINITY)));
  }

  /** Occurrences that fell while every agent was down: from the fleet's last sign of life to now. */
  private async startupCatchup(fleetLastSeen: number, untilMs: number): Promise<void> {
    const from = fleetLastSeen - 2 * this.timing.heartbeatMs;
    const missed: Occurrence[] = [];
    for (const job of this.jobSet.jobs.values()) {
      const start = Math.max(from, this.jobSet.updatedAt.get(job.id) ?? 0);
      for (const instant of firesBetween(job.schedule, this.tzOf(job), start, untilMs, CATCHUP_RECORD_CAP)) if (!pausedAt(job, instant)) missed.push({ job, instant });
    }
    if (missed.length === 0) return;
    await this.catchUpOrKeep(missed, "no agent was running");
  }

  /** Catch-up; on a store error the occurrences are kept for the next heartbeat's: none is dropped unrecorded. */
  private async catchUpOrKeep(missed: Occurrence[], cause: string): Promise<void> {
    try {
      await this.catchUp(missed, cause);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      this.health.failed(this.clock.now(), error);
      this.missedDuringOutage.push(...missed);
    }
  }

  /**
   * Occurrences this agent did not try (third or later in their order), once the two agents before
   * it had their turns: one read says which neither claimed, and those follow catch-up
   * (docs/protocol.md, "Cost of standbys").
   */
  private async checkUntried(): Promise<void> {
    this.checkingUntried = true;
    const settled = this.untried.takeSettled(this.clock.now());
    const dropped = this.untried.takeDropped();
    if (dropped > 0) this.log.warn(`${dropped} noted occurrence(s) were dropped unchecked: more than ${UNTRIED_CAP} waited for a check the store did not answer`);
    try {
      if (settled.length === 0 || this.stopping) return;
      let records: RunRecord[];
      try {
        records = await this.store.getRuns(settled.map((o) => occurrenceId(o.job.id, o.instant)));
      } catch (error) {
        this.untried.restore(settled);
        if (!(error instanceof StoreError)) throw error;
        this.health.failed(this.clock.now(), error);
        return;
      }
      // The job as loaded now (a deleted one is not caught up).
      const missed = unclaimed(settled, records).flatMap(({ job, instant }) => {
        const current = this.jobSet.jobs.get(job.id);
        return current ? [{ job: current, instant }] : [];
      });
      if (missed.length === 0) return;
      this.log.warn(`${missed.length} occurrence(s) were not claimed by the two agents before this one in their order; catching up`);
      await this.catchUpOrKeep(missed, "neither agent before this one in its order claimed it");
    } finally {
      this.checkingUntried = false;
    }
  }

  /** Occurrences this agent could not claim (in time) while the store was unreachable or slow. */
  private async outageCatchup(): Promise<void> {
    // Only once the trying positions all had their turn for every one of them: the next agent may
    // still claim one this agent could not, and a `missed` record written first would beat its
    // claim. All at once, so `catchup: last` still runs only the latest.
    const now = this.clock.now();
    if (this.missedDuringOutage.some((o) => this.fireAt(o.job, o.instant) + this.settleMs() > now)) return;
    this.catchingUp = true;
    const missed = this.missedDuringOutage;
    this.missedDuringOutage = [];
    try {
      await this.catchUp(missed, "the store was unreachable or answered too late to claim it on time");
    } catch (error) {
      // The store failed again: keep them for the next recovery (unique inserts make a redo safe).
      this.missedDuringOutage.unshift(...missed);
      this.health.failed(this.clock.now(), error);
    } finally {
      this.catchingUp = false;
    }
  }

  /**
   * Each job's catch-up is done by its owner; the others follow at their place in its order, so a
   * dead owner's gap is still covered (their claims then lose on the unique `_id`).
   */
  private async catchUp(missed: Occurrence[], cause: string): Promise<void> {
    const byJob = new Map<string, number[]>();
    for (const { job, instant } of missed) byJob.set(job.id, [...(byJob.get(job.id) ?? []), instant]);
    const byPosition = new Map<number, Job[]>();
    for (const id of byJob.keys()) {
      const job = this.jobSet.jobs.get(id);
      const position = job ? this.positionFor(job) : null;
      if (job && position !== null) byPosition.set(position, [...(byPosition.get(position) ?? []), job]);
    }
    for (const [position, jobs] of [...byPosition].sort((a, b) => a[0] - b[0])) {
      if (position > 0) await this.clock.sleep(position * this.timing.failoverStepMs, this.stopSignal.signal);
      if (this.stopping) return;
      for (const job of jobs) {
        const instants = [...new Set(byJob.get(job.id)!)].sort((a, b) => a - b).slice(-CATCHUP_RECORD_CAP);
        const records = await this.store.getRuns(instants.map((at) => occurrenceId(job.id, at)));
        const recorded = new Set(records.map((r) => r.scheduled_for.getTime()));
        // A claim of ours that landed although its read-back failed: ours to run, not to skip.
        for (const r of records) {
          if (r.machine_id === this.settings.machineId && r.session === this.fence.session && r.status === "running" && !this.running.has(r._id) && this.fence.mayWrite()) {
            this.track(this.runAttempt(job, r, position));
          }
        }
        const plan = planCatchup(job, instants, recorded, this.clock.now(), { windowMs: this.settings.catchupWindowMs, cap: this.timing.catchupCap, cause });
        const reasons = new Map(plan.missed.map((m) => [m.instant, m.reason]));
        if (plan.missed.length > 0) {
          await this.recordWithoutRunning(plan.missed.map((m) => ({ job, instant: m.instant })), "missed", (o) => reasons.get(o.instant)!, "catchup", true);
          if (plan.missed.length > 3) this.log.info(`${job.name}: ${plan.missed.length} occurrence(s) recorded missed (${cause})`);
        }
        if (plan.run.length > 0 && this.fence.mayWrite()) await this.claimAndRun(plan.run.map((instant) => ({ job, instant })), "catchup", position);
      }
    }
  }

  // ── heartbeat: membership, job catalog, command inbox ───────────────────────────────────────

  private async heartbeatTick(): Promise<void> {
    this.heartbeatInFlight = true;
    try {
      await this.withinHeartbeatDeadline(this.heartbeat());
      this.health.succeeded(this.clock.now());
      // Apart from the heartbeat: a slow catch-up must not make this agent look dead.
      if (this.missedDuringOutage.length > 0 && !this.catchingUp && this.fence.mayWrite()) this.track(this.outageCatchup());
      if (this.untried.size > 0 && !this.checkingUntried && this.fence.mayWrite()) this.track(this.checkUntried());
    } catch (error) {
      this.heartbeatFailed = true;
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
    await Promise.race([
      done,
      this.clock.sleep(deadlineMs, timedOut.signal).then(() => {
        if (!timedOut.signal.aborted) throw new StoreError(`heartbeat got no answer from the store within ${deadlineMs / 1000} s`);
      }),
    ]);
  }

  /** The named steps of a heartbeat; housekeeping runs on its own timer, never inside it. */
  private async heartbeat(): Promise<void> {
    await this.renewLiveness();
    if (this.mode === "serial") await this.serials.heartbeat(this.clock.now());
    this.judgeFleet();
    // One read says whether jobs or commands changed; each is listed only then.
    const revisions = await this.store.getRevisions();
    await this.refreshJobCatalog(revisions.jobs);
    await this.applyCommandInbox(revisions.commands);
    if (!this.stopping && this.scheduling) {
      const owned = [...this.jobSet.jobs.values()].filter((job) => job.alert_after_sec !== undefined && this.positionFor(job) === 0);
      await this.deadman.check(owned, this.jobSet.updatedAt, this.deadManContext(), (work) => this.track(work));
    }
  }

  /**
   * Membership: one small write (the heartbeat, stamped by the store's clock) and one read of the
   * machines. The write extends this agent's fence only when acknowledged within R.
   */
  private async renewLiveness(): Promise<void> {
    this.fence.lapseIfPast(this.clock.now());
    if (this.fence.session !== this.publishedSession && this.finals.size > 0) {
      // A new session is about to be published, which makes the old one dead to the fleet: its
      // results still held here are written first, so finished work is not taken over and re-run.
      this.finals.retryNow();
      const settled = new AbortController();
      void this.finals.flush().then(() => settled.abort());
      await this.clock.sleep(this.timing.roundTripMs, settled.signal);
    }
    const sentAt = this.clock.now();
    this.fence.lapseIfPast(sentAt);
    const session = this.fence.session;
    await this.store.beat(this.machineRecord(), new Date(sentAt));
    const ackedAt = this.clock.now();
    this.lastRoundTripMs = ackedAt - sentAt;
    this.publishedSession = session;
    if (this.heartbeatFailed) {
      this.heartbeatFailed = false;
      this.recoveredAt = ackedAt;
    }
    if (!this.fence.acknowledged(sentAt, ackedAt, session) && this.fence.session === session && this.running.size > 0) {
      this.log.warn(`heartbeat took ${ackedAt - sentAt} ms (more than ${this.timing.roundTripMs} ms): it does not extend this agent's fence`);
    }
    const machines = await this.store.listMachines();
    const readAt = this.clock.now();
    const self = machines.find((m) => m._id === this.settings.machineId);
    const selfSeenMs = self?.last_seen.getTime() ?? readAt;
    this.clockOffsetMs = Math.round((sentAt + ackedAt) / 2 - selfSeenMs);
    // A judgement not made yet (during start-up) keeps its earlier view, so a predecessor is seen.
    const previous = this.pendingJudgement?.previous ?? this.view.machines;
    const live = machines.filter((m) => m.protocol === PROTOCOL_VERSION && (m._id === this.settings.machineId || isLiveMachine(m, selfSeenMs, this.timing.deadAfterMs)));
    const members: Member[] = live
      .filter((m) => m._id !== this.settings.machineId || !this.stopping)
      .map((m) => ({ machineId: m._id, serial: m.serial ?? null, tags: m.tags ?? {}, live: true, ready: m.ready === true }));
    this.pendingJudgement = { previous, machines };
    this.view = { machines: new Map(machines.map((m) => [m._id, m])), members };
    this.lastHeartbeatAt = readAt;
    this.noteFleetDifferences(machines, selfSeenMs);
    // The next heartbeat, or earlier: when another agent would be dead, judge it then (docs/protocol.md, "Liveness and the fence").
    let next = readAt + this.settings.heartbeatMs;
    for (const m of live) {
      if (m._id === this.settings.machineId) continue;
      next = Math.min(next, readAt + (m.last_seen.getTime() + this.timing.deadAfterMs - selfSeenMs) + 50);
    }
    this.nextHeartbeatAt = Math.max(readAt + 50, next);
  }

  private clockOffsetMs: number | null = null;
  /** The last heartbeat's round trip: how long before an instant an overlap guard must be written. */
  private lastRoundTripMs = 0;
  /** The session the last acknowledged heartbeat carried. */
  private publishedSession: string | null = null;
  private heartbeatFailed = false;
  /** When this agent's heartbeats succeeded again after failing (its own outage). */
  private recoveredAt = Number.NEGATIVE_INFINITY;
  private pendingJudgement: { previous: Map<string, MachineRecord>; machines: MachineRecord[] } | null = null;

  private machineRecord(): Omit<MachineRecord, "last_seen"> {
    return {
      _id: this.settings.machineId,
      hostname: this.settings.hostname,
      pid: process.pid,
      serial: this.serial,
      status: this.stopping ? "draining" : "running",
      version: this.settings.version,
      started_at: new Date(this.startedAt),
      clock_offset_ms: this.clockOffsetMs,
      invalid_jobs: this.jobSet.invalid.length,
      protocol: PROTOCOL_VERSION,
      session: this.fence.session,
      seq: this.fence.nextSeq(),
      running: [...this.running.values()].map(({ run }) => ({ id: run._id, job_id: run.job_id, scheduled_for: run.scheduled_for })),
      ready: this.jobsLoaded && !this.stopping,
      tags: this.settings.tags ?? {},
      placement: this.mode,
      default_tz: this.settings.defaultTz,
      ...(this.claimsStoppedAt !== null ? { claims_stopped_at: new Date(this.claimsStoppedAt) } : {}),
      ...(this.owed.size > 0 ? { inherited: [...this.owed.keys()] } : {}),
    };
  }

  /** Notes an earlier session of this machine whose attempts this agent is to take over. */
  private owe(session: string, running: NonNullable<MachineRecord["running"]>, why: string): void {
    if (session === this.fence.session) return;
    this.owed.set(session, { running, why });
    if (this.owed.size > MAX_OWED_SESSIONS) {
      const [oldest] = this.owed.keys();
      this.owed.delete(oldest!);
      this.log.error(`more than ${MAX_OWED_SESSIONS} earlier sessions of this machine were never taken over (a crash loop?): attempts of session ${oldest} that are still recorded running stay so`);
    }
  }

  /** v1 agents still running, and agents whose default zones differ: said once per change. */
  private noteFleetDifferences(machines: MachineRecord[], selfSeenMs: number): void {
    const v1 = machines.filter((m) => m.protocol === undefined && m.status !== "stopped" && selfSeenMs - m.last_seen.getTime() <= this.timing.deadAfterMs);
    if (v1.length > 0 !== this.v1AgentsSeen) {
      this.v1AgentsSeen = v1.length > 0;
      if (this.v1AgentsSeen) this.log.error(`agents of coordination protocol v1 are running (${v1.map((m) => m._id).join(", ")}): this v2 agent fires nothing until they stop; stop the whole fleet to upgrade`);
      else this.log.info("no v1 agent is running any more: firing");
    }
    const zones = [...new Set(machines.filter((m) => m.protocol === PROTOCOL_VERSION && m.status !== "stopped" && m.default_tz).map((m) => `${m._id}=${m.default_tz}`))];
    const distinct = new Set(zones.map((z) => z.split("=")[1]));
    const key = distinct.size > 1 ? zones.sort().join(",") : "";
    if (key !== this.zonesWarned) {
      this.zonesWarned = key;
      if (key) this.log.warn(`agents disagree on the default zone (config tz): ${zones.join(", ")}; jobs without their own tz fire by each agent's zone — set the same tz everywhere`);
    }
  }

  /** The judge: sessions of the fleet that are dead, each taken over once, in the job's order. */
  private judgeFleet(): void {
    const judgement = this.pendingJudgement;
    this.pendingJudgement = null;
    if (!judgement || this.stopping || !this.scheduling) {
      if (judgement && !this.scheduling) this.pendingJudgement = judgement; // judged once jobs are loaded
      return;
    }
    // Just back from its own outage, this agent lets the others reconnect for D before it counts
    // their silence (they were cut off like it); a new session of theirs is judged at once.
    const judgeSilence = this.clock.now() - this.recoveredAt >= this.timing.deadAfterMs;
    const owed: DeadSession[] = [...this.owed].map(([session, { running, why }]) => ({ machineId: this.settings.machineId, session, running, why, replaced: true, inherited: [] }));
    for (const dead of [...owed, ...deadSessions(judgement.previous, judgement.machines, this.settings.machineId, this.timing.deadAfterMs, judgeSilence)]) {
      const key = `${dead.machineId}/${dead.session}`;
      if (this.handledSessions.has(key)) continue;
      // This machine's own earlier sessions are the ones it owes (above), judged again until done.
      if (dead.machineId === this.settings.machineId && !this.owed.has(dead.session)) continue;
      // Replaced by a live session of the same machine: that agent takes its own old attempts over
      // (should it die first, its taker takes them with it: the `inherited` of its record).
      if (dead.replaced && dead.machineId !== this.settings.machineId) continue;
      this.handledSessions.add(key);
      this.track(this.takeOver(dead));
    }
  }

  private async takeOver(dead: DeadSession): Promise<void> {
    // The first live agent of each job's order acts at once; the others after their turn (a claim
    // in flight at the death is found by the second look, R later).
    const positions = (dead.running ?? []).map((r) => {
      const job = this.jobSet.jobs.get(r.job_id);
      return job ? (this.positionFor(job) ?? 0) : 0;
    });
    // Attempts found only by the scan have no job to order by: the dead machine's own id orders them.
    const byMachine = Math.max(0, firingOrder(dead.machineId, this.view.members, "spread").indexOf(this.settings.machineId));
    const wait = dead.machineId === this.settings.machineId ? 0 : Math.min(byMachine, ...positions) * this.timing.failoverStepMs;
    const own = dead.machineId === this.settings.machineId;
    let complete = true;
    for (const delay of [wait, this.timing.roundTripMs]) {
      if (delay > 0) await this.clock.sleep(delay, this.stopSignal.signal);
      if (this.stopping || !this.fence.mayWrite()) {
        if (own) this.handledSessions.delete(`${dead.machineId}/${dead.session}`); // still owed: judged again
        return;
      }
      try {
        // This agent's own earlier session: results it still holds are written first, and attempts
        // still here (writing their results) are not taken over.
        if (own) await this.finals.flush();
        const result = await takeOverSession(
          {
            store: this.store,
            machineId: this.settings.machineId,
            session: this.fence.session,
            serial: this.serial,
            now: this.clock.now(),
            maxAttempts: this.timing.maxAttempts,
            jobOf: (id) => this.jobSet.jobs.get(id),
            log: this.log,
            runsHere: (id) => this.running.has(id),
            ...(own ? { exclude: new Set(this.running.keys()) } : {}),
          },
          dead,
        );
        complete = !result.incomplete;
        if (result.incomplete) this.handledSessions.delete(`${dead.machineId}/${dead.session}`); // looked at again next heartbeat
        for (const { lost, successor } of result.won) {
          safely(() => this.observer.takeover(lost, successor));
          if (successor.status !== "running") safely(() => this.observer.runRecorded(successor));
          const job = this.jobSet.jobs.get(successor.job_id);
          if (job && successor.status === "running" && this.fence.mayWrite()) this.track(this.runAttempt(job, successor, 0));
        }
      } catch (error) {
        this.health.failed(this.clock.now(), error);
        this.handledSessions.delete(`${dead.machineId}/${dead.session}`); // looked at again next time
        return;
      }
    }
    // Both looks done with nothing left running: the next heartbeat no longer lists it as inherited.
    if (own && complete) this.owed.delete(dead.session);
  }

  /** The session lapsed (fence deadline passed): its running work was aborted; judge it like any dead session. */
  private onFenceLapse(session: string): void {
    this.log.error(`heartbeat not confirmed before the fence deadline: stopped every request of session ${session}; its attempts will be taken over`);
    const running = [...this.running.values()].filter(({ run }) => run.session === session).map(({ run }) => ({ id: run._id, job_id: run.job_id, scheduled_for: run.scheduled_for }));
    this.owe(session, running, `${this.settings.machineId}'s fence deadline passed`);
  }

  private async refreshJobCatalog(revision: string): Promise<void> {
    if (this.jobsRevision !== null && revision !== this.jobsRevision) await this.reloadJobs();
  }

  private async reloadJobs(options: { rescheduleAll?: boolean } = {}): Promise<void> {
    this.jobsRevision = await this.store.getJobsRevision();
    const previous = this.jobSet;
    this.jobSet = await loadJobSet(this.store, [...Object.keys(this.settings.secrets), ...Object.keys(this.settings.http?.vars ?? {})], this.settings.secretScope, Object.keys(this.settings.limits ?? {}));
    const now = this.clock.now();
    for (const [id, job] of this.jobSet.jobs) {
      // An unchanged job keeps its place in time; a new or edited one (or all, after a new default zone) starts from now.
      if (options.rescheduleAll || previous.fingerprints.get(id) !== this.jobSet.fingerprints.get(id) || !this.nextAt.has(id)) {
        // From when it was written (within the stagger window), not from when this agent happened
        // to read it: every agent then starts the new version at the same instant.
        const written = this.jobSet.updatedAt.get(id);
        const from = now - this.jitterOf(job);
        if (this.scheduling) this.schedule(job, options.rescheduleAll || written === undefined ? from : Math.min(from, Math.max(from - this.staggerWindow(), written)));
      } else {
        // Same document: keep the loaded object, so a dispatched occurrence still matches it.
        const before = previous.jobs.get(id);
        if (before) this.jobSet.jobs.set(id, before);
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

  /**
   * Commands addressed to this agent, each applied once and acknowledged (a failed ack is retried
   * on the next heartbeat). The window reaches back a minute before this start, so a command from
   * a CLI whose clock runs behind is still seen; one this machine acknowledged in an earlier run is not applied again.
   * Commands are listed only when `revision` (the store's commands revision) changed since the
   * last listing, or `commandListEveryMs` after it.
   */
  private async applyCommandInbox(revision: string): Promise<void> {
    for (const [id, pending] of this.unacked) {
      if (await this.ack(pending.command, pending.error)) this.unacked.delete(id);
    }
    const now = this.clock.now();
    if (revision === this.listedCommandsRevision && now - this.commandsListedAt < this.timing.commandListEveryMs) return;
    const commands = await this.store.listCommands(new Date(this.startedAt - 60_000));
    this.listedCommandsRevision = revision;
    this.commandsListedAt = now;
    for (const command of commands) {
      if (this.appliedCommands.has(command._id)) continue;
      if (command.target !== null && command.target !== this.settings.machineId) continue;
      this.appliedCommands.add(command._id);
      if (command.created_at.getTime() < this.startedAt && (await this.store.listAcks(command._id)).some((a) => a.machine_id === this.settings.machineId)) continue;
      let error: string | undefined;
      try {
        await this.applyCommand(command);
      } catch (e) {
        error = this.redact((e as Error).message);
        this.log.error(`command ${command.type} (${command._id}) failed: ${error}`);
      }
      if (!(await this.ack(command, error))) this.unacked.set(command._id, { command, ...(error ? { error } : {}) });
    }
  }

  private async ack(command: CommandRecord, error?: string): Promise<boolean> {
    try {
      await this.store.insertAck({
        _id: `${command._id}:${this.settings.machineId}`,
        command_id: command._id,
        machine_id: this.settings.machineId,
        acked_at: new Date(this.clock.now()),
        ...(error ? { error } : {}),
      });
      return true;
    } catch (e) {
      this.log.warn(`could not acknowledge command ${command._id} (${(e as Error).message}); retrying with the next heartbeat`);
      return false;
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
      const zoneChanged = next.defaultTz !== this.settings.defaultTz;
      this.settings = { ...next, machineId: this.settings.machineId };
      this.timing = deriveTiming(this.settings);
      this.slots.resize(next.maxConcurrentRuns);
      this.flow.update(next.limits ?? {});
      this.redact = createRedactor(Object.values(next.secrets));
      await this.reloadJobs({ rescheduleAll: zoneChanged });
    } else if (command.type === "drain") {
      this.stop(`drain command ${command._id}`);
    } else if (command.type === "trigger") {
      await this.triggerFromCommand(command);
    } else {
      // Written by hand or by a newer version: acknowledged with this error, never guessed at.
      throw new Error(`unknown command type ${JSON.stringify(command.type)}; this agent knows reload, reload-config, drain and trigger`);
    }
  }

  /**
   * `jobs trigger` asked this agent (the job's owner) to run one manual occurrence: claimed under
   * the run id the CLI chose, run here like any attempt (its slot, its fence), acknowledged once
   * claimed; the CLI waits for the record. A command older than the stagger window is not run:
   * its CLI has given up waiting (and said so).
   */
  private async triggerFromCommand(command: CommandRecord): Promise<void> {
    const job = command.job_id === undefined ? undefined : this.jobSet.jobs.get(command.job_id);
    if (!command.job_id || !command.run_id) throw new Error("trigger command without job_id and run_id");
    if (!job) throw new Error(`job ${command.job_id} is not loaded on ${this.settings.machineId} (deleted, disabled or invalid here)`);
    const now = this.clock.now();
    if (now - command.created_at.getTime() > TRIGGER_COMMAND_TTL_MS) throw new Error(`trigger sent ${Math.round((now - command.created_at.getTime()) / 1000)} s ago: too old to run now`);
    await this.runManual(job, command.run_id, `command ${command._id}`);
  }

  /**
   * One manual occurrence of `job` (as the caller read it from the store) claimed under `runId` in
   * this agent's session and run here like any attempt: its flow limit, a run slot, its fence, and
   * taken over should this agent die. Resolves once claimed; throws when it could not be.
   */
  async runManual(job: Job, runId: string, by: string): Promise<RunRecord> {
    if (!this.fence.mayWrite()) throw new Error(`${this.settings.machineId} cannot confirm its heartbeat right now (its fence deadline is near), so it starts nothing`);
    // Run unlimited, it could break the bound the limit's owner keeps (as loadJobSet refuses it).
    if (job.limit !== undefined && !this.flow.has(job.limit)) throw new Error(`it names limit "${job.limit}", which is not in ${this.settings.machineId}'s config limits`);
    const now = this.clock.now();
    const run: RunRecord = { ...this.newRun(job, runId, 1, now, "manual", "running", now), _id: runId };
    const [result] = await claimBatch(this.store, [run]);
    if (result?.outcome !== "won") throw new Error(`run ${runId} could not be claimed (${result?.outcome ?? "no answer"})`);
    this.log.info(`${job.name}: triggered by ${by}; run ${run._id}`);
    this.track(this.runAttempt(job, run, 0));
    return run;
  }

  // ── housekeeping: off the heartbeat, by the fleet's first agent ──────────────────────────────

  private async housekeeping(now: number): Promise<void> {
    if (firingOrder("housekeeping", this.view.members, this.mode)[0] !== this.settings.machineId) return;
    try {
      const runs = await this.store.pruneRuns(new Date(now - this.settings.historyDays * 86_400_000));
      const commands = await this.store.pruneCommands(new Date(now - 86_400_000));
      const audit = await this.store.pruneAudit(new Date(now - this.settings.historyDays * 86_400_000));
      if (runs + commands + audit > 0) this.log.info(`history sweep: deleted ${runs} run record(s) and ${audit} audit record(s) older than ${this.settings.historyDays} days, and ${commands} old command(s)`);
    } catch (error) {
      this.log.warn(`history sweep failed (${(error as Error).message}); tried again in an hour`);
    }
  }

  // ── lifecycle ───────────────────────────────────────────────────────────────────────────────

  private serialSettings() {
    return { machineId: this.settings.machineId, maxSerial: this.settings.maxSerial, deadAfterMs: this.settings.deadAfterMs };
  }

  /**
   * After an occurrence's fire time, how long until both trying positions had their turn and their
   * claim landed (nothing to wait for when this agent is alone in the fleet).
   */
  private settleMs(): number {
    const tryers = Math.min(TRYING_POSITIONS, this.view.members.length);
    return tryers <= 1 ? 0 : (tryers - 1) * this.timing.failoverStepMs + this.timing.lateToleranceMs + this.timing.roundTripMs;
  }

  /** How long after an instant the last agent of an order would try: older occurrences are catch-up. */
  private staggerWindow(): number {
    return staggerWindowMs(this.timing, this.view.members.length);
  }

  /** Waits for `work`, but no longer than `ms` (a stop must end even when the store does not answer). */
  private async atMost(ms: number, work: Promise<unknown>): Promise<void> {
    const done = new AbortController();
    void work.then(
      () => done.abort(),
      () => done.abort(),
    );
    await this.clock.sleep(ms, done.signal);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch((error) => {
      if (error instanceof StoreError) this.health.failed(this.clock.now(), error);
      else this.log.error(`internal error: ${(error as Error)?.stack ?? error}`);
    });
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
        if (!(error instanceof StoreError)) throw error;
        this.health.failed(this.clock.now(), error);
        if (this.stopping) throw error;
        await this.clock.sleep(this.health.retryDelayMs(this.settings.heartbeatMs), this.stopSignal.signal);
      }
    }
  }

  private async shutdown(): Promise<void> {
    // Attempts still sending requests; those only waiting for their result to be stored do not
    // hold the stop (their results are flushed below).
    const sending = () => [...this.running.values()].filter((r) => !r.finished);
    if (sending().length > 0) {
      // Heartbeats go on while running work finishes: they are its lease.
      const deadlineAt = this.clock.now() + this.settings.shutdownTimeoutMs;
      let reportAt = this.clock.now();
      while (sending().length > 0 && this.clock.now() < deadlineAt) {
        // What the stop still waits for, and how long it will, every few seconds (a first-day
        // operator pressing Ctrl-C deserves to know why the process has not exited yet).
        if (this.clock.now() >= reportAt) {
          this.log.info(stopProgress(sending(), deadlineAt - this.clock.now()));
          reportAt = this.clock.now() + STOP_REPORT_EVERY_MS;
        }
        if (this.clock.now() >= this.nextHeartbeatAt && !this.heartbeatInFlight) this.track(this.heartbeatTick());
        this.wake = new AbortController();
        const heartbeatAt = this.heartbeatInFlight ? Number.POSITIVE_INFINITY : this.nextHeartbeatAt;
        await this.clock.sleep(Math.max(0, Math.min(heartbeatAt, deadlineAt, this.clock.now() + 100) - this.clock.now()), this.wake.signal);
      }
      const left = sending();
      if (left.length > 0) {
        this.log.warn(`shutdown deadline passed: aborting ${left.length} attempt(s)`);
        this.hardStop.abort(new Error("agent shut down"));
        await this.atMost(STOP_GRACE_MS, Promise.allSettled(left.map((r) => r.done)));
      }
    }
    // Results are written if the store answers within the grace; those it does not take are
    // listed as running in the last heartbeat, so another agent takes them over.
    await this.atMost(STOP_GRACE_MS, this.finals.flush());
    // Claims, heartbeats and catch-ups still under way get a short grace, not a veto over stopping.
    const settled = new AbortController();
    void Promise.allSettled([...this.inFlight]).then(() => settled.abort());
    await this.clock.sleep(Math.min(this.settings.shutdownTimeoutMs, 5000), settled.signal);
    if (!settled.signal.aborted) this.log.warn(`stopping with ${this.inFlight.size} store operation(s) still unanswered`);
    await this.atMost(STOP_GRACE_MS, this.finals.flush());
    if (this.finals.size > 0) this.log.warn(`stopping with ${this.finals.size} result(s) not recorded: the store did not take them; those attempts will be taken over`);
    this.fence.close();
    try {
      await this.serials.release();
      await this.store.beat({ ...this.machineRecord(), status: "stopped", serial: null, ready: false, running: [] }, new Date(this.clock.now()));
    } catch (error) {
      this.log.warn(`could not record this agent as stopped (${(error as Error).message}); others take over after dead_after_sec`);
    }
    this.log.info(`stopped (${this.stopReason})`);
  }
}

/** "stopping: waiting for 2 attempt(s) (nightly @ 2026-…, sync @ 2026-…); 25 s left before they are aborted". */
function stopProgress(sending: RunningAttempt[], leftMs: number): string {
  const shown = sending.slice(0, 5).map(({ job, run }) => `${job.name} @ ${run.scheduled_for.toISOString()}`);
  const more = sending.length > shown.length ? `, and ${sending.length - shown.length} more` : "";
  return `stopping: waiting for ${sending.length} running attempt(s) (${shown.join(", ")}${more}); ${Math.ceil(leftMs / 1000)} s left before they are aborted (shutdown_timeout_sec)`;
}

/** Another live agent already uses this machine id: refused at start (exit 2). */
export class DuplicateMachineError extends ConfigError {
  constructor(message: string) {
    super(message, "E_DUPLICATE_MACHINE");
    this.name = "DuplicateMachineError";
  }
}
