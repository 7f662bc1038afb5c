/**
 * An in-memory stand-in for the store, for bench/sim.ts: just enough of the protocol's shape to
 * count what a fleet would ask of MongoDB/SQLite. The one rule that matters is the real one
 * (docs/protocol.md): a claim is an insert with a given `_id`, and an insert of an `_id`
 * that exists fails. Nothing here is atomic beyond that, and nothing needs to be.
 */

export interface MachineDoc {
  machineId: string;
  session: number;
  /** Store time of the last renewal (ms). */
  lastSeen: number;
  ready: boolean;
  stopped: boolean;
  serial: number | null;
  tags: Record<string, string>;
}

export interface StoreCounts {
  /** Claim documents sent (each one insert of an occurrence `_id`). */
  claimDocs: number;
  /** Claim round trips (one insertMany per agent per try instant). */
  claimBatches: number;
  /** Claim inserts that failed on the unique `_id` (a standby, or a race the insert settled). */
  claimsRejected: number;
  /** Heartbeat renewals (one small write each; also the ready and stopped announcements). */
  heartbeatWrites: number;
  /** Membership reads (one per heartbeat, plus the judge's re-reads at last_seen + D). */
  membershipReads: number;
  /** The heartbeat's one read of the jobs and commands revisions. */
  revisionReads: number;
  /** A heartbeat's one read of the occurrences its agent did not try (third or later in their order). */
  untriedChecks: number;
  /** Final run records written, and the round trips (batches) they took. */
  finalDocs: number;
  finalBatches: number;
}

export class MemoryStore {
  readonly counts: StoreCounts = { claimDocs: 0, claimBatches: 0, claimsRejected: 0, heartbeatWrites: 0, membershipReads: 0, revisionReads: 0, untriedChecks: 0, finalDocs: 0, finalBatches: 0 };
  readonly machines = new Map<string, MachineDoc>();
  /** Claims by `_id` → the machine (slot number) whose insert won. */
  private readonly claims = new Map<string, number>();
  /** Claim ids by the instant they are for, oldest first, so old claims can be pruned. */
  private readonly byInstant: { instant: number; ids: string[] }[] = [];

  /** One claim insert: true when it won, false on a duplicate `_id`. Round trips are counted by the caller (batches). */
  insertClaim(id: string, slot: number, instant: number): boolean {
    this.counts.claimDocs++;
    if (this.claims.has(id)) {
      this.counts.claimsRejected++;
      return false;
    }
    this.claims.set(id, slot);
    const last = this.byInstant[this.byInstant.length - 1];
    if (last !== undefined && last.instant === instant) last.ids.push(id);
    else this.byInstant.push({ instant, ids: [id] });
    return true;
  }

  claimBatches(n: number): void {
    this.counts.claimBatches += n;
  }

  writeFinals(docs: number, batches: number): void {
    this.counts.finalDocs += docs;
    this.counts.finalBatches += batches;
  }

  winnerOf(id: string): number | undefined {
    return this.claims.get(id);
  }

  /** Drops claims for instants before `before`: no agent tries that late, so none can collide. */
  prune(before: number): void {
    while (this.byInstant.length > 0 && this.byInstant[0]!.instant < before) {
      for (const id of this.byInstant.shift()!.ids) this.claims.delete(id);
    }
  }

  get claimsHeld(): number {
    return this.claims.size;
  }

  /** A heartbeat renewal: upsert of the machine's document with the store's time. */
  renew(doc: Omit<MachineDoc, "lastSeen">, now: number): void {
    this.counts.heartbeatWrites++;
    this.machines.set(doc.machineId, { ...doc, lastSeen: now });
  }

  /** Graceful stop: the machine marks itself stopped so the others move its jobs at once. */
  markStopped(machineId: string, now: number): void {
    this.counts.heartbeatWrites++;
    const doc = this.machines.get(machineId);
    if (doc) this.machines.set(machineId, { ...doc, stopped: true, ready: false, serial: null, lastSeen: now });
  }

  /** The revisions read each heartbeat makes (jobs and commands never change in the simulation). */
  readRevisions(): void {
    this.counts.revisionReads++;
  }

  /** The check of untried occurrences (its outcome is decided by the simulation's own tally of misses). */
  checkUntried(): void {
    this.counts.untriedChecks++;
  }

  /** The membership read each heartbeat makes. */
  listMachines(): Iterable<MachineDoc> {
    this.counts.membershipReads++;
    return this.machines.values();
  }
}
