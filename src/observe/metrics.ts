import type { AgentSnapshot } from "./observer.ts";
import type { RunRecord } from "../store/types.ts";
import { Registry, type Counter, type Gauge, type Histogram } from "./exposition.ts";
import type { AgentObserver } from "./observer.ts";

/**
 * Seconds from an occurrence's instant to its start. Standbys fire `failover_step_sec` (5 s by
 * default) per rank late, takeovers a lease later, catch-ups up to `catchup_window_sec` (1 h).
 */
export const LATENESS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 300, 900, 3600];

/**
 * This agent's metrics. Counters count what this agent did (an occurrence is counted once, by the
 * agent that ran or recorded it), so `sum by (job_name, outcome)` over the fleet adds up; gauges
 * that describe the agent are read from its snapshot at each scrape.
 *
 * The job label is `job_name`, not `job`: Prometheus sets `job` on every target itself.
 */
export class FleetMetrics implements AgentObserver {
  readonly registry = new Registry();
  private readonly info: Gauge;
  private readonly serial: Gauge;
  private readonly rank: Gauge;
  private readonly liveAgents: Gauge;
  private readonly up: Gauge;
  private readonly heartbeat: Gauge;
  private readonly started: Gauge;
  private readonly running: Gauge;
  private readonly jobs: Gauge;
  readonly runs: Counter;
  readonly lateness: Histogram;
  readonly failovers: Counter;
  readonly takeovers: Counter;
  readonly alerts: Counter;
  readonly storeErrors: Counter;
  readonly storeReconnects: Counter;
  readonly lastSuccess: Gauge;

  constructor() {
    const r = this.registry;
    this.info = r.gauge("fleetcron_agent_info", "This agent: always 1; its version, machine id, host name, serial (empty: none) and store kind are labels.", [
      "version",
      "machine_id",
      "hostname",
      "serial",
      "store",
    ]);
    this.serial = r.gauge("fleetcron_agent_serial", "The serial this agent holds (1..max_serial), 0 when it holds none.");
    this.rank = r.gauge("fleetcron_agent_rank", "This agent's place among live serial holders: 0 = primary (fires on time), k = fires k failover steps late.");
    this.liveAgents = r.gauge("fleetcron_live_agents", "Live agents holding a serial, as this agent last saw them.");
    this.up = r.gauge("fleetcron_store_up", "1 when the store answered this agent's last call, 0 during an outage.");
    this.heartbeat = r.gauge("fleetcron_last_heartbeat_timestamp_seconds", "When this agent last completed a heartbeat (Unix time).");
    this.started = r.gauge("fleetcron_agent_start_time_seconds", "When this agent started (Unix time).");
    this.running = r.gauge("fleetcron_running_attempts", "Attempts this agent is running now.");
    this.jobs = r.gauge("fleetcron_jobs", "Jobs this agent has loaded: state=\"enabled\" (valid, enabled) or \"invalid\" (skipped).", ["state"]);
    this.runs = r.counter(
      "fleetcron_runs_total",
      "Occurrences this agent ran to an end or recorded, by job and outcome: success, error, lost (its lease ran out under it), skipped, missed.",
      ["job_name", "outcome"],
    );
    this.lateness = r.histogram(
      "fleetcron_run_lateness_seconds",
      "Start of an attempt minus its occurrence's instant (started_at - scheduled_for), by trigger: schedule, catchup, takeover.",
      ["trigger"],
      LATENESS_BUCKETS,
    );
    this.failovers = r.counter("fleetcron_failovers_total", "Occurrences this agent fired as a standby (rank > 0): the agents before it did not claim them in time.", ["job_name"]);
    this.takeovers = r.counter("fleetcron_takeovers_total", "Attempts this agent took over after their agent stopped renewing the lease (the old attempt is marked lost).", [
      "job_name",
    ]);
    this.alerts = r.counter("fleetcron_alerts_total", "Dead-man alerts (alert_after_sec) this agent claimed and notified.", ["job_name"]);
    this.storeErrors = r.counter("fleetcron_store_errors_total", "Store calls of this agent that failed.");
    this.storeReconnects = r.counter("fleetcron_store_reconnects_total", "Store outages that ended: the store answered this agent again.");
    this.lastSuccess = r.gauge("fleetcron_last_success_timestamp_seconds", "When an attempt of the job that this agent ran last succeeded (Unix time); take max by (job_name) over the fleet.", [
      "job_name",
    ]);
  }

  runStarted(run: RunRecord, rank: number): void {
    if (run.trigger !== "manual") this.lateness.observe({ trigger: run.trigger }, Math.max(0, ((run.started_at ?? run.claimed_at).getTime() - run.scheduled_for.getTime()) / 1000));
    if (run.trigger === "schedule" && rank > 0) this.failovers.inc({ job_name: run.job_name });
  }

  runFinished(run: RunRecord): void {
    this.runs.inc({ job_name: run.job_name, outcome: run.status });
    if (run.status === "success") this.lastSuccess.set({ job_name: run.job_name }, (run.finished_at?.getTime() ?? 0) / 1000);
  }

  runRecorded(run: RunRecord): void {
    this.runs.inc({ job_name: run.job_name, outcome: run.status });
  }

  takeover(lost: RunRecord): void {
    this.takeovers.inc({ job_name: lost.job_name });
  }

  alertFired(alert: RunRecord): void {
    this.alerts.inc({ job_name: alert.job_name });
  }

  storeFailed(): void {
    this.storeErrors.inc();
  }

  storeRecovered(): void {
    this.storeReconnects.inc();
  }

  /** The `/metrics` body: the agent's state as of now, then the counters. */
  render(snapshot: AgentSnapshot): string {
    this.info.reset();
    this.info.set(
      { version: snapshot.version, machine_id: snapshot.machineId, hostname: snapshot.hostname, serial: snapshot.serial === null ? "" : String(snapshot.serial), store: snapshot.store.kind },
      1,
    );
    this.serial.set({}, snapshot.serial ?? 0);
    this.rank.set({}, snapshot.rank);
    this.liveAgents.set({}, snapshot.liveAgents);
    this.up.set({}, snapshot.store.reachable ? 1 : 0);
    this.heartbeat.reset();
    if (snapshot.lastHeartbeatAt !== null) this.heartbeat.set({}, snapshot.lastHeartbeatAt / 1000);
    this.started.set({}, snapshot.startedAt / 1000);
    this.running.set({}, snapshot.runningAttempts);
    this.jobs.set({ state: "enabled" }, snapshot.jobs);
    this.jobs.set({ state: "invalid" }, snapshot.invalidJobs);
    return this.registry.render();
  }
}
