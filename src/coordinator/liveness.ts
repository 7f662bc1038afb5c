import type { Clock } from "../core/clock.ts";
import type { MachineRecord } from "../store/types.ts";
import type { Timing } from "./timing.ts";

/**
 * Liveness per agent (docs/protocol.md, "Liveness and the fence"). An agent's heartbeat is the lease
 * of every attempt it runs. Its fence deadline F is the send time of the last heartbeat that was
 * acknowledged in time, plus its own lease L; past F − M it starts no request, at F it aborts every
 * attempt (closing their connections), so it has stopped before another agent may judge it dead.
 * An acknowledgement that arrives after F revives nothing: the agent opens a new session.
 */
export class Fence {
  private deadline: number;
  private sessionId: string;
  private controller = new AbortController();
  private timer: AbortController | null = null;
  private seqNo = 0;
  /** When the last session lapsed: a heartbeat sent before it belongs to that session. */
  private lapsedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly timing: Timing,
    /** The agent's clock (a fake one in tests): F is checked by its `now` and armed with its `sleep`. */
    private readonly clock: Clock,
    private readonly onLapse: (session: string) => void = () => {},
    private readonly newSession: () => string = randomSession,
  ) {
    this.sessionId = newSession();
    // Nothing is acknowledged yet: no attempt may run before the first heartbeat lands.
    this.deadline = Number.NEGATIVE_INFINITY;
  }

  private now(): number {
    return this.clock.now();
  }

  get session(): string {
    return this.sessionId;
  }

  /** Heartbeats sent in this session, for the machine record. */
  nextSeq(): number {
    return ++this.seqNo;
  }

  /** F, in the clock's milliseconds. */
  get deadlineMs(): number {
    return this.deadline;
  }

  /** Aborted at F (and replaced when a new session starts). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether a request, a claim or a final write may still be sent now: before F − M. */
  mayWrite(at = this.now()): boolean {
    return at < this.deadline - this.timing.abortMarginMs;
  }

  /**
   * A heartbeat sent at `sentAt`, carrying `session`, was acknowledged at `ackedAt`. Returns false
   * when it came too late (after F, or slower than R), or carried a session that has since lapsed,
   * to extend the fence; after F a new session has started.
   */
  acknowledged(sentAt: number, ackedAt: number, session: string = this.sessionId): boolean {
    if (this.lapseIfPast(ackedAt)) return false;
    // A heartbeat that still carried the old session id published nothing of the new one.
    if (session !== this.sessionId || sentAt < this.lapsedAt) return false;
    if (ackedAt - sentAt > this.timing.roundTripMs) return false;
    this.deadline = Math.max(this.deadline, sentAt + this.timing.ownLeaseMs);
    this.arm();
    return true;
  }

  /** Checks F against `at`; past it, aborts everything of this session and opens a new one. */
  lapseIfPast(at = this.now()): boolean {
    if (this.deadline === Number.NEGATIVE_INFINITY || at < this.deadline) return false;
    this.lapse();
    return true;
  }

  private lapse(): void {
    const old = this.sessionId;
    this.lapsedAt = this.now();
    this.controller.abort(new Error(`fence deadline passed: heartbeats of session ${old} were not acknowledged in time`));
    this.controller = new AbortController();
    this.sessionId = this.newSession();
    this.seqNo = 0;
    this.deadline = Number.NEGATIVE_INFINITY;
    this.close();
    this.onLapse(old);
  }

  /** A timer of its own at F: a heartbeat stuck on the store must not delay the abort. */
  private arm(): void {
    this.close();
    const timer = new AbortController();
    this.timer = timer;
    const deadline = this.deadline;
    void this.clock.sleep(Math.max(0, deadline - this.now()), timer.signal).then(() => {
      if (!timer.signal.aborted) this.lapseIfPast();
    });
  }

  close(): void {
    this.timer?.abort();
    this.timer = null;
  }
}

export function randomSession(): string {
  return crypto.randomUUID();
}

/** A session judged dead, with what it said it was running when last heard from. */
export interface DeadSession {
  machineId: string;
  session: string;
  running: MachineRecord["running"];
  why: string;
  /**
   * The machine itself is alive under a new session (a lapsed fence, or a restart): it takes over
   * its own old attempts, knowing which it is still finishing; the others leave them to it.
   */
  replaced: boolean;
  /** Earlier sessions whose attempts the dead one had yet to take over: they are taken over with it. */
  inherited: string[];
}

/** Sessions that may still have attempts recorded running, after `record`'s own: none after a clean stop. */
export function owedSessions(record: Pick<MachineRecord, "session" | "status" | "running" | "inherited">): string[] {
  const own = record.session && (record.status !== "stopped" || (record.running?.length ?? 0) > 0) ? [record.session] : [];
  return [...new Set([...own, ...(record.inherited ?? [])])];
}

/**
 * The judge (pure): which sessions of the fleet are dead, seen from `self`'s just-renewed record.
 * A session is dead when its machine started a new one (a restart), when its machine was not
 * heard from for D on the store's clock, or when it stopped with attempts still listed.
 * `previous` is the view of the last heartbeat, so a session replaced between two views is seen.
 */
export function deadSessions(
  previous: ReadonlyMap<string, MachineRecord>,
  current: readonly MachineRecord[],
  selfId: string,
  deadAfterMs: number,
  /** False right after the judge's own outage: the others get D to come back before silence counts. */
  judgeSilence = true,
): DeadSession[] {
  const self = current.find((m) => m._id === selfId);
  if (!self) return [];
  const selfSeen = self.last_seen.getTime();
  const dead: DeadSession[] = [];
  for (const machine of current) {
    const before = previous.get(machine._id);
    // A restart (or a lapsed fence) replaced the session: the old one is dead even with nothing
    // published, since a claim may have been in flight (the takeover scans for it).
    if (before?.session && machine.session !== before.session && owedSessions(before).length > 0) {
      dead.push({ machineId: machine._id, session: before.session, running: before.running ?? [], why: `${machine._id} restarted (new session)`, replaced: true, inherited: before.inherited ?? [] });
    }
    if (machine._id === selfId || !machine.session || machine.protocol !== 2) continue;
    const silentMs = selfSeen - machine.last_seen.getTime();
    const inherited = machine.inherited ?? [];
    if (machine.status === "stopped") {
      if (owedSessions(machine).length > 0) dead.push({ machineId: machine._id, session: machine.session, running: machine.running ?? [], why: `${machine._id} stopped with attempts unfinished`, replaced: false, inherited });
    } else if (judgeSilence && silentMs > deadAfterMs) {
      dead.push({ machineId: machine._id, session: machine.session, running: machine.running ?? [], why: `${machine._id} not heard from for ${(silentMs / 1000).toFixed(1)} s`, replaced: false, inherited });
    }
  }
  return dead;
}

/** Whether a machine counts as live for placement, on the store's clock. */
export function isLiveMachine(machine: MachineRecord, selfSeenMs: number, deadAfterMs: number): boolean {
  return machine.status !== "stopped" && selfSeenMs - machine.last_seen.getTime() <= deadAfterMs;
}
