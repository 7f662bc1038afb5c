import type { AgentSnapshot } from "./observer.ts";

export interface Health {
  ok: boolean;
  /** Empty when healthy; else each reason in words an operator can act on. */
  reasons: string[];
  machine_id: string;
  serial: number | null;
  rank: number;
  phase: AgentSnapshot["phase"];
  store: { kind: string; reachable: boolean };
  last_heartbeat: string | null;
  /** Run slots: a queue, or an occurrence skipped for want of a slot in the last minute, is saturation. */
  slots: { in_use: number; size: number; waiting: number; saturated: boolean };
}

/** How long a skip for want of a run slot keeps /healthz saying the agent is saturated. */
const SATURATION_MEMORY_MS = 60_000;

/**
 * `/healthz`: healthy when the agent runs, its store answers, it holds a serial and its heartbeat
 * is recent. A stalled heartbeat counts: an agent whose loop is stuck is not serving its serial.
 */
export function assessHealth(s: AgentSnapshot, now: number): Health {
  const reasons: string[] = [];
  if (s.phase === "starting") reasons.push("starting: the agent has not finished its first heartbeat and job load");
  if (s.phase === "stopping") reasons.push("stopping: the agent claims nothing new and hands its serial over");
  if (!s.store.reachable) {
    const since = s.store.downSince === null ? "" : ` since ${new Date(s.store.downSince).toISOString()} (${Math.round((now - s.store.downSince) / 1000)} s)`;
    reasons.push(`store unreachable${since}: ${s.store.lastError ?? "no answer"}`);
  }
  if (s.placement === "serial" && s.serial === null && s.phase !== "stopping") {
    reasons.push("holds no serial: every serial up to max_serial is held by a live agent (or none could be claimed yet); this agent only takes over work");
  }
  const stale = Math.max(3 * s.heartbeatMs, s.deadAfterMs);
  if (s.phase === "running" && s.store.reachable && s.lastHeartbeatAt !== null && now - s.lastHeartbeatAt > stale) {
    reasons.push(`last heartbeat ${Math.round((now - s.lastHeartbeatAt) / 1000)} s ago (more than ${stale / 1000} s): other agents count this one as dead`);
  }
  const skippedLately = s.slots.lastSkippedAt !== null && now - s.slots.lastSkippedAt < SATURATION_MEMORY_MS;
  const saturated = s.slots.queued > 0 || skippedLately;
  if (saturated) {
    reasons.push(
      `saturated: ${s.slots.inUse} of ${s.slots.size} run slots busy, ${s.slots.queued} attempt(s) waiting` +
        (skippedLately ? `; an occurrence was skipped for want of a slot ${Math.round((now - s.slots.lastSkippedAt!) / 1000)} s ago` : "") +
        " (raise max_concurrent_runs, or lower max_parallel of slow jobs)",
    );
  }
  return {
    ok: reasons.length === 0,
    reasons,
    machine_id: s.machineId,
    serial: s.serial,
    rank: s.rank,
    phase: s.phase,
    store: { kind: s.store.kind, reachable: s.store.reachable },
    last_heartbeat: s.lastHeartbeatAt === null ? null : new Date(s.lastHeartbeatAt).toISOString(),
    slots: { in_use: s.slots.inUse, size: s.slots.size, waiting: s.slots.queued, saturated },
  };
}
