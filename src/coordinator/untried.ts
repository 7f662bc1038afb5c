import type { Job } from "../jobs/types.ts";
import type { RunRecord } from "../store/types.ts";
import { occurrenceId } from "./occurrence.ts";

/**
 * Positions 0 and 1 of a job's order try each of its occurrences; an agent further down does not
 * claim, it notes the occurrence here. Once every trying position had its turn, one read of the
 * noted occurrences tells which nobody claimed (both agents before this one died or were cut off
 * before their turn); those go to catch-up. docs/protocol.md, "Cost of standbys".
 */
export const TRYING_POSITIONS = 2;

/** More than this many noted occurrences (a store that stays unreadable for long) drops the oldest. */
export const UNTRIED_CAP = 100_000;

export interface UntriedOccurrence {
  job: Job;
  instant: number;
  /** When the trying positions' turns are over (the last one's turn plus its tolerance). */
  settledAt: number;
}

export class UntriedOccurrences {
  private entries: UntriedOccurrence[] = [];
  private dropped = 0;

  get size(): number {
    return this.entries.length;
  }

  note(entry: UntriedOccurrence): void {
    this.entries.push(entry);
    if (this.entries.length > UNTRIED_CAP) {
      this.entries.shift();
      this.dropped++;
    }
  }

  /** How many were dropped for the cap since the last call (each drop is reported once). */
  takeDropped(): number {
    const dropped = this.dropped;
    this.dropped = 0;
    return dropped;
  }

  /** Removes and returns the occurrences whose trying positions all had their turn by `now`. */
  takeSettled(now: number): UntriedOccurrence[] {
    const settled: UntriedOccurrence[] = [];
    const waiting: UntriedOccurrence[] = [];
    for (const entry of this.entries) (entry.settledAt <= now ? settled : waiting).push(entry);
    this.entries = waiting;
    return settled;
  }

  /** Puts back occurrences whose check failed, to be checked again. */
  restore(entries: UntriedOccurrence[]): void {
    this.entries = [...entries, ...this.entries].slice(-UNTRIED_CAP);
  }
}

/** The noted occurrences with no record at all: attempt 1's `_id` is the occurrence key. */
export function unclaimed(entries: readonly UntriedOccurrence[], records: readonly RunRecord[]): UntriedOccurrence[] {
  const recorded = new Set(records.map((r) => r._id));
  return entries.filter((e) => !recorded.has(occurrenceId(e.job.id, e.instant)));
}
