/**
 * Placement (docs/protocol.md, "Placement"): in which order the agents allowed to run a job try each
 * of its occurrences. Index 0 of a job's firing order fires on time; index k tries k ×
 * `failover_step_sec` later.
 *
 * Placement decides TIMING ONLY. Who runs an occurrence is decided by the store's unique-`_id`
 * claim insert (see docs/protocol.md): two agents whose membership views differ for a moment may
 * both believe they are first, both insert the same occurrence key, and exactly one insert wins.
 * A wrong or stale placement costs a duplicate-key error or a few seconds of lateness, never a
 * second run. That is why this module may be pure: no I/O, no clock, no coordination.
 *
 * `spread` (default) uses rendezvous hashing (highest random weight): every eligible machine gets a
 * pseudo-random score for the job's placement key (its id, or its flow-control `limit` key), and
 * the machines are tried by descending score. Why rendezvous and not a lowest-serial rule or a
 * hash ring:
 *   - each job has one owner and the owners are spread evenly (≈ 1/N of the jobs each);
 *   - when a machine joins it takes ≈ 1/N of the jobs, and when it leaves or dies only ITS jobs
 *     move (each to the next machine of that job's own order) — nothing else reshuffles;
 *   - there is nothing to coordinate or store: every agent computes the same answer from the same
 *     membership view, so the only shared state is the membership the heartbeats already read;
 *   - the standby order is per job too, so a dead owner's jobs are spread over all the survivors
 *     instead of all landing on one.
 * The score must be identical in every process, OS and runtime (agents of one fleet may run
 * different builds), so it is a pure-JS cyrb53 (53-bit, public domain, by bryc) over the UTF-8 bytes
 * of `placementKey + "\0" + machineId` — never `Bun.hash` (its algorithm may change) or anything
 * seeded per process. Changing the hash moves ≈ all jobs at once when a fleet upgrades: don't, or
 * treat it as a protocol version change. Golden values in tests/unit/coordinator-placement.test.ts
 * catch an accidental change.
 *
 * `serial` is the seed's behaviour: members holding a serial fire in ascending serial order, then
 * members without one, by machine id (they only take over; they go last). The key is ignored.
 *
 * Only members that are live (heard from within `dead_after_sec`, judged by the caller), ready
 * (jobs loaded) and eligible (`run_on` ⊆ the member's `tags`) appear in an order. The caller
 * passes its own entry as live and ready once it has loaded its jobs.
 *
 * Cost: `Placer` prepares a membership view once (UTF-8 bytes of each id, the live/ready filter);
 * then each key costs one pass over the key's bytes plus one short pass per member, with no
 * allocation for `ownerIndex`, `positionIndex` and `orderInto`. `placeAll` places many keys in one
 * pass (50 members × 100,000 keys takes a fraction of a second).
 */

export type PlacementMode = "spread" | "serial";

/**
 * What a job is placed by: its id, or its flow-control `limit`, so that every job sharing a limit
 * has the same owner, which enforces the limit for the fleet (docs/protocol.md, "Flow control").
 */
export function placementKeyOf(job: { id: string; limit?: string | undefined }): string {
  return job.limit === undefined ? job.id : `limit:${job.limit}`;
}

/** A job's `run_on`: every key must equal the member's tag of that name. Null/undefined/{}: anywhere. */
export type RunOn = Readonly<Record<string, string>> | null | undefined;

export interface Member {
  machineId: string;
  /** Held serial, for "serial" mode. */
  serial: number | null;
  /** Config `tags`, e.g. {region: "eu"}. */
  tags: Record<string, string>;
  /** Heard from within dead_after_sec (decided by the caller). */
  live: boolean;
  /** Has loaded its jobs. */
  ready: boolean;
}

// ---------------------------------------------------------------------------------------------
// Hash: cyrb53 over UTF-8 bytes. The state is two 32-bit lanes, fed one byte at a time, so the
// state after `key + "\0"` can be kept and continued with each machine id: hashing the
// concatenation costs one pass over the key per key and one pass over each id per member.

const SEED1 = 0xdeadbeef;
const SEED2 = 0x41c6ce57;
const M1 = 2654435761;
const M2 = 1597334677;

// Scratch lanes for the feeding helpers (single-threaded JS: no interleaving within a call).
let lane1 = 0;
let lane2 = 0;

function feedByte(b: number): void {
  lane1 = Math.imul(lane1 ^ b, M1);
  lane2 = Math.imul(lane2 ^ b, M2);
}

/** Feeds the UTF-8 encoding of `s` (as TextEncoder encodes it: a lone surrogate is U+FFFD). */
function feedUtf8(s: string): void {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      feedByte(c);
    } else if (c < 0x800) {
      feedByte(0xc0 | (c >> 6));
      feedByte(0x80 | (c & 0x3f));
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        feedByte(0xf0 | (c >> 18));
        feedByte(0x80 | ((c >> 12) & 0x3f));
        feedByte(0x80 | ((c >> 6) & 0x3f));
        feedByte(0x80 | (c & 0x3f));
      } else {
        feedByte(0xef); // U+FFFD
        feedByte(0xbf);
        feedByte(0xbd);
      }
    } else {
      feedByte(0xe0 | (c >> 12));
      feedByte(0x80 | ((c >> 6) & 0x3f));
      feedByte(0x80 | (c & 0x3f));
    }
  }
}

function finish(h1: number, h2: number): number {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Continues lanes (p1, p2) with `bytes` and finishes: the score of one member for one key. */
function scoreFrom(p1: number, p2: number, bytes: Uint8Array): number {
  let h1 = p1;
  let h2 = p2;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    h1 = Math.imul(h1 ^ b, M1);
    h2 = Math.imul(h2 ^ b, M2);
  }
  return finish(h1, h2);
}

/** cyrb53 (seed 0) of the UTF-8 bytes of `s`: an integer in [0, 2^53). Exported for tests. */
export function cyrb53Utf8(s: string): number {
  lane1 = SEED1;
  lane2 = SEED2;
  feedUtf8(s);
  return finish(lane1, lane2);
}

/** cyrb53 (seed 0) of raw bytes. Exported for tests (equals cyrb53Utf8 of the decoded string). */
export function cyrb53Bytes(bytes: Uint8Array): number {
  return scoreFrom(SEED1, SEED2, bytes);
}

/** Sets lane1/lane2 to the state after `placementKey + "\0"`. */
function startKey(placementKey: string): void {
  lane1 = SEED1;
  lane2 = SEED2;
  feedUtf8(placementKey);
  feedByte(0);
}

/** The rendezvous (highest random weight) score of a machine for a key: deterministic across processes, OSes and runtimes. */
export function rendezvousScore(placementKey: string, machineId: string): number {
  startKey(placementKey);
  feedUtf8(machineId);
  return finish(lane1, lane2);
}

const encoder = new TextEncoder();
const idBytesCache = new Map<string, Uint8Array>();
function idBytes(machineId: string): Uint8Array {
  let bytes = idBytesCache.get(machineId);
  if (bytes === undefined) {
    if (idBytesCache.size >= 4096) idBytesCache.clear();
    bytes = encoder.encode(machineId);
    idBytesCache.set(machineId, bytes);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Ordering rules.

/** Plain UTF-16 code unit order: the same in every runtime and locale (never localeCompare). */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "serial" order: serial holders ascending, then the rest by machine id. */
function compareSerial(a: Member, b: Member): number {
  if (a.serial !== null && b.serial !== null) return a.serial - b.serial || compareIds(a.machineId, b.machineId);
  if (a.serial !== null) return -1;
  if (b.serial !== null) return 1;
  return compareIds(a.machineId, b.machineId);
}

/** Whether a member may fire a job with this `run_on` (every key of run_on must equal the member's tag). */
export function isEligible(member: Member, runOn?: RunOn): boolean {
  if (!runOn) return true;
  for (const key in runOn) {
    if (!Object.hasOwn(runOn, key)) continue;
    if (!Object.hasOwn(member.tags, key) || member.tags[key] !== runOn[key]) return false;
  }
  return true;
}

function canFire(member: Member, runOn: RunOn): boolean {
  return member.live && member.ready && isEligible(member, runOn);
}

// ---------------------------------------------------------------------------------------------
// Placer: one membership view, many keys.

/**
 * A membership view prepared for placing many keys. Indexes returned are indexes into the
 * `members` array given to the constructor. Members are expected to have distinct machine ids.
 * Not safe to share across concurrent async code paths only in the sense that `orderInto` callers
 * own their `out` buffer; the Placer itself keeps scratch space, which is fine in single-threaded JS.
 */
export class Placer {
  readonly members: readonly Member[];
  readonly mode: PlacementMode;
  /** Indexes (into members) of live, ready members; in "serial" mode already in serial order. */
  private readonly cand: Int32Array;
  private readonly bytes: Uint8Array[];
  private readonly scores: Float64Array;
  private readonly masks = new WeakMap<object, Uint8Array>();

  constructor(members: readonly Member[], mode: PlacementMode) {
    this.members = members;
    this.mode = mode;
    const idx: number[] = [];
    for (let i = 0; i < members.length; i++) if (members[i]!.live && members[i]!.ready) idx.push(i);
    if (mode === "serial") idx.sort((a, b) => compareSerial(members[a]!, members[b]!));
    this.cand = Int32Array.from(idx);
    this.bytes = idx.map((i) => idBytes(members[i]!.machineId));
    this.scores = new Float64Array(idx.length);
  }

  /** Live and ready members (before eligibility). */
  get candidates(): number {
    return this.cand.length;
  }

  /** Per candidate slot: 1 when eligible for this run_on. Cached per run_on object. */
  private mask(runOn: RunOn): Uint8Array | null {
    if (!runOn) return null;
    let mask = this.masks.get(runOn);
    if (mask === undefined) {
      mask = new Uint8Array(this.cand.length);
      for (let c = 0; c < this.cand.length; c++) mask[c] = isEligible(this.members[this.cand[c]!]!, runOn) ? 1 : 0;
      this.masks.set(runOn, mask);
    }
    return mask;
  }

  /** Fills this.scores for the eligible candidates (−1 for the others). Spread mode only. */
  private score(placementKey: string, mask: Uint8Array | null): void {
    startKey(placementKey);
    const p1 = lane1;
    const p2 = lane2;
    const scores = this.scores;
    for (let c = 0; c < scores.length; c++) scores[c] = mask !== null && mask[c] === 0 ? -1 : scoreFrom(p1, p2, this.bytes[c]!);
  }

  /** True when candidate slot a goes before slot b (spread mode, scores filled). */
  private ahead(a: number, b: number): boolean {
    const sa = this.scores[a]!;
    const sb = this.scores[b]!;
    if (sa !== sb) return sa > sb;
    return this.members[this.cand[a]!]!.machineId < this.members[this.cand[b]!]!.machineId;
  }

  /** Index (into members) of the member that fires on time, or −1 when none may fire the job. */
  ownerIndex(placementKey: string, runOn?: RunOn): number {
    const mask = this.mask(runOn);
    const n = this.cand.length;
    if (this.mode === "serial") {
      for (let c = 0; c < n; c++) if (mask === null || mask[c] === 1) return this.cand[c]!;
      return -1;
    }
    this.score(placementKey, mask);
    let best = -1;
    for (let c = 0; c < n; c++) {
      if (this.scores[c]! < 0) continue;
      if (best === -1 || this.ahead(c, best)) best = c;
    }
    return best === -1 ? -1 : this.cand[best]!;
  }

  owner(placementKey: string, runOn?: RunOn): string | null {
    const i = this.ownerIndex(placementKey, runOn);
    return i === -1 ? null : this.members[i]!.machineId;
  }

  /** Position of members[memberIndex] in the key's firing order, or −1 when it may not fire it. */
  positionIndex(memberIndex: number, placementKey: string, runOn?: RunOn): number {
    if (this.mode === "spread") this.score(placementKey, this.mask(runOn));
    return this.positionAfterOwner(memberIndex, runOn);
  }

  /**
   * positionIndex for the key whose scores were filled last (by ownerIndex or positionIndex),
   * without a second hash pass. Used by placeAll.
   */
  positionAfterOwner(memberIndex: number, runOn?: RunOn): number {
    const mask = this.mask(runOn);
    const n = this.cand.length;
    let me = -1;
    for (let c = 0; c < n; c++) if (this.cand[c] === memberIndex) me = c;
    if (me === -1 || (mask !== null && mask[me] === 0)) return -1;
    let pos = 0;
    if (this.mode === "serial") {
      for (let c = 0; c < me; c++) if (mask === null || mask[c] === 1) pos++;
      return pos;
    }
    for (let c = 0; c < n; c++) if (c !== me && this.scores[c]! >= 0 && this.ahead(c, me)) pos++;
    return pos;
  }

  /** Position of a machine in the key's firing order, or null when it may not fire it. */
  position(machineId: string, placementKey: string, runOn?: RunOn): number | null {
    for (let i = 0; i < this.members.length; i++) {
      if (this.members[i]!.machineId === machineId) {
        const pos = this.positionIndex(i, placementKey, runOn);
        return pos === -1 ? null : pos;
      }
    }
    return null;
  }

  /**
   * Writes the indexes (into members) of the key's firing order into `out` (length ≥ members.length)
   * and returns how many were written. No allocation.
   */
  orderInto(placementKey: string, runOn: RunOn, out: Int32Array): number {
    const mask = this.mask(runOn);
    const n = this.cand.length;
    let count = 0;
    if (this.mode === "serial") {
      for (let c = 0; c < n; c++) if (mask === null || mask[c] === 1) out[count++] = this.cand[c]!;
      return count;
    }
    this.score(placementKey, mask);
    // Insertion sort of candidate slots (N is small: tens of members).
    for (let c = 0; c < n; c++) {
      if (this.scores[c]! < 0) continue;
      let j = count++;
      while (j > 0 && this.ahead(c, out[j - 1]!)) {
        out[j] = out[j - 1]!;
        j--;
      }
      out[j] = c;
    }
    for (let k = 0; k < count; k++) out[k] = this.cand[out[k]!]!;
    return count;
  }

  /** Machine ids in firing order. */
  order(placementKey: string, runOn?: RunOn): string[] {
    const out = new Int32Array(this.cand.length);
    const n = this.orderInto(placementKey, runOn, out);
    const ids: string[] = new Array(n);
    for (let k = 0; k < n; k++) ids[k] = this.members[out[k]!]!.machineId;
    return ids;
  }
}

// ---------------------------------------------------------------------------------------------
// The plain functions.

/** Live, ready, eligible members in the order they try the job: index 0 fires on time, index k after k × failover_step. */
export function firingOrder(placementKey: string, members: readonly Member[], mode: PlacementMode, runOn?: RunOn): string[] {
  return new Placer(members, mode).order(placementKey, runOn);
}

/** This machine's position in that order, or null when it may not fire the job (not eligible, not live/ready). */
export function positionOf(machineId: string, placementKey: string, members: readonly Member[], mode: PlacementMode, runOn?: RunOn): number | null {
  // Direct O(N) count, no allocation: how many members that may fire the job go before this one.
  let me: Member | undefined;
  for (const m of members) if (m.machineId === machineId) me = m;
  if (me === undefined || !canFire(me, runOn)) return null;
  let pos = 0;
  if (mode === "serial") {
    for (const m of members) if (m !== me && canFire(m, runOn) && compareSerial(m, me) < 0) pos++;
    return pos;
  }
  startKey(placementKey);
  const p1 = lane1;
  const p2 = lane2;
  const mine = scoreFrom(p1, p2, idBytes(machineId));
  for (const m of members) {
    if (m === me || !canFire(m, runOn)) continue;
    const s = scoreFrom(p1, p2, idBytes(m.machineId));
    if (s > mine || (s === mine && m.machineId < machineId)) pos++;
  }
  return pos;
}

export interface PlaceAllOptions {
  /** One run_on for every key, or per key (by index into keys). */
  runOn?: RunOn | ((index: number) => RunOn);
  /** Also compute this machine's position for every key. */
  positionsFor?: string;
}

export interface PlaceAllResult {
  /** owners[i]: the machine that fires keys[i] on time, or null when no member may fire it. */
  owners: (string | null)[];
  /** With positionsFor: that machine's position for keys[i], or −1 when it may not fire it. */
  positions: Int32Array | null;
}

/** Places many keys over one membership view in one pass (the owner of each, optionally one machine's position). */
export function placeAll(keys: readonly string[], members: readonly Member[], mode: PlacementMode, options: PlaceAllOptions = {}): PlaceAllResult {
  const placer = new Placer(members, mode);
  const owners: (string | null)[] = new Array(keys.length);
  const target = options.positionsFor === undefined ? -1 : members.findIndex((m) => m.machineId === options.positionsFor);
  const positions = options.positionsFor === undefined ? null : new Int32Array(keys.length).fill(-1);
  const runOnOf = options.runOn;
  for (let i = 0; i < keys.length; i++) {
    const runOn = typeof runOnOf === "function" ? runOnOf(i) : runOnOf;
    const o = placer.ownerIndex(keys[i]!, runOn);
    owners[i] = o === -1 ? null : members[o]!.machineId;
    if (positions !== null && target !== -1) positions[i] = o === target ? 0 : o === -1 ? -1 : placer.positionAfterOwner(target, runOn);
  }
  return { owners, positions };
}
