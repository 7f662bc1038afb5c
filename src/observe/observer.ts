import { StoreHealth } from "../store/health.ts";
import type { Logger } from "../core/logger.ts";
import type { RunRecord, Store } from "../store/types.ts";

/** What `/healthz`, `/metrics` and the status page read from a running agent; a copy, never live state. */
export interface AgentSnapshot {
  machineId: string;
  hostname: string;
  version: string;
  serial: number | null;
  placement: "spread" | "serial";
  /** serial: this agent's place among live serial holders (0 fires on time). spread: 0. */
  rank: number;
  liveAgents: number;
  phase: "starting" | "running" | "stopping";
  store: { kind: Store["kind"]; location: string; reachable: boolean; downSince: number | null; lastError: string | null };
  startedAt: number;
  lastHeartbeatAt: number | null;
  runningAttempts: number;
  /** Run slots (`max_concurrent_runs`): in use, size, attempts waiting, and the last skip for want of one. */
  slots: { inUse: number; size: number; queued: number; lastSkippedAt: number | null };
  jobs: number;
  invalidJobs: number;
  heartbeatMs: number;
  deadAfterMs: number;
  defaultTz: string;
  secretKeys: string[];
}

/**
 * What the agent tells whoever watches it (the metrics registry). Every call is synchronous and
 * must not throw: observing never changes what the agent does.
 */
export interface AgentObserver {
  /** This agent won a claim (or took an attempt over) and starts running it. `rank` is its place when it fired (0 = primary). */
  runStarted(run: RunRecord, rank: number): void;
  /** An attempt this agent ran has ended (success, error, or lost: its lease ran out under it). */
  runFinished(run: RunRecord): void;
  /** This agent recorded an occurrence that does not run (skipped, missed). */
  runRecorded(run: RunRecord): void;
  /** This agent took over `lost` (its holder stopped renewing) as `successor`. */
  takeover(lost: RunRecord, successor: RunRecord): void;
  /** This agent claimed a dead-man alert (`alert_after_sec`) for an occurrence. */
  alertFired(alert: RunRecord): void;
  /** A store call failed. */
  storeFailed(error: unknown): void;
  /** The store answers again after an outage of `downMs`. */
  storeRecovered(downMs: number): void;
}

export const NOOP_OBSERVER: AgentObserver = {
  runStarted() {},
  runFinished() {},
  runRecorded() {},
  takeover() {},
  alertFired() {},
  storeFailed() {},
  storeRecovered() {},
};

/**
 * The agent's StoreHealth, also telling the observer about failures and recoveries, and keeping
 * the outage's start and last error for `/healthz` and the status page.
 */
export class ObservedStoreHealth extends StoreHealth {
  private since: number | null = null;
  private error: string | null = null;

  constructor(
    log: Logger,
    private readonly observer: AgentObserver,
  ) {
    super(log);
  }

  /** When the current outage started, or null while the store answers. */
  get outageSince(): number | null {
    return this.since;
  }

  /** The last failure's message during the current outage. */
  get lastError(): string | null {
    return this.error;
  }

  override failed(now: number, error: unknown): void {
    super.failed(now, error);
    if (this.since === null) this.since = now;
    this.error = (error as Error)?.message ?? String(error);
    safely(() => this.observer.storeFailed(error));
  }

  override succeeded(now: number): number | null {
    const since = super.succeeded(now);
    this.since = null;
    this.error = null;
    if (since !== null) safely(() => this.observer.storeRecovered(now - since));
    return since;
  }
}

/** Observers must never break the agent: a throwing one is ignored. */
export function safely(call: () => void): void {
  try {
    call();
  } catch {
    // observation is best effort
  }
}
