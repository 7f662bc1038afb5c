import type { Logger } from "../core/logger.ts";
import type { SerialRecord, Store } from "../store/types.ts";

/**
 * Serials order the fleet under `placement: "serial"` (docs/protocol.md, "Placement"): the live
 * agent with the lowest serial fires first, the next one `failover_step_sec` later, and so on. A serial is taken by unique insert; a stale one
 * (its holder silent for `dead_after_sec`) is freed by a delete that matches exactly what was read,
 * so two agents freeing it at once cannot free a fresh re-claim.
 */
export interface SerialSettings {
  machineId: string;
  maxSerial: number;
  deadAfterMs: number;
}

export interface Ranking {
  /** 0 = fires on time; k = tries after k × failover_step. */
  rank: number;
  /** Live agents holding a serial. */
  live: number;
}

export function isLive(serial: SerialRecord, now: number, deadAfterMs: number): boolean {
  return now - serial.last_seen.getTime() < deadAfterMs;
}

/** This machine's place among the live serial holders; without a serial it goes last. */
export function rankAmong(serials: SerialRecord[], settings: SerialSettings, now: number): Ranking {
  const live = serials
    .filter((s) => s.machine_id === settings.machineId || isLive(s, now, settings.deadAfterMs))
    .sort((a, b) => a._id - b._id);
  const mine = live.findIndex((s) => s.machine_id === settings.machineId);
  return { rank: mine === -1 ? live.length : mine, live: live.length };
}

export class SerialKeeper {
  serial: number | null = null;

  constructor(
    private readonly store: Pick<Store, "listSerials" | "insertSerial" | "touchSerial" | "deleteSerial">,
    /** Read at each use, so `reload-config` reaches it. */
    private readonly settingsNow: () => SerialSettings,
    private readonly log: Logger,
  ) {}

  private get settings(): SerialSettings {
    return this.settingsNow();
  }

  /** Verifies, refreshes or (re)claims this machine's serial; returns the serials as now stored. */
  async heartbeat(now: number): Promise<SerialRecord[]> {
    let serials = await this.store.listSerials();
    const held = serials.find((s) => s.machine_id === this.settings.machineId && s._id === this.serial);
    if (this.serial !== null && !held) {
      this.log.warn(`serial ${this.serial} is no longer held by this machine (freed as stale by another agent?); claiming one again`);
      this.serial = null;
    }
    if (this.serial === null) {
      // A serial left by an earlier run of this same machine (a crash) is ours to keep.
      const leftover = serials.find((s) => s.machine_id === this.settings.machineId);
      if (leftover) this.serial = leftover._id;
      else await this.claim(serials, now);
      serials = await this.store.listSerials();
    }
    if (this.serial !== null) {
      await this.store.touchSerial(this.serial, this.settings.machineId, new Date(now));
      serials = serials.map((s) => (s._id === this.serial ? { ...s, last_seen: new Date(now) } : s));
    }
    return serials;
  }

  private async claim(serials: SerialRecord[], now: number): Promise<void> {
    const byNumber = new Map(serials.map((s) => [s._id, s]));
    for (let n = 1; n <= this.settings.maxSerial; n++) {
      const current = byNumber.get(n);
      if (current) {
        if (isLive(current, now, this.settings.deadAfterMs)) continue;
        if (!(await this.store.deleteSerial(n, current.machine_id, current.last_seen))) continue;
        this.log.info(`freed serial ${n}: ${current.machine_id} not seen since ${current.last_seen.toISOString()}`);
      }
      const at = new Date(now);
      if (await this.store.insertSerial({ _id: n, machine_id: this.settings.machineId, claimed_at: at, last_seen: at })) {
        this.serial = n;
        this.log.info(`holding serial ${n}`);
        return;
      }
    }
    this.log.warn(`all ${this.settings.maxSerial} serials are held by live agents: this agent only takes over work (raise max_serial to let it fire)`);
  }

  /** On graceful stop: the next agent becomes primary at once instead of after `dead_after_sec`. */
  async release(): Promise<void> {
    if (this.serial === null) return;
    await this.store.deleteSerial(this.serial, this.settings.machineId);
    this.serial = null;
  }
}
