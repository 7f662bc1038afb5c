/**
 * Fleet placement simulation: what FleetCron's placement does past one machine, without machines.
 *
 *   bun bench/sim.ts                                  # 50 agents, 100,000 jobs, 24 h, seed 1
 *   bun bench/sim.ts --agents 20 --jobs 10000 --hours 6 --seed 7 --json
 *   bun bench/sim.ts --mode serial                    # the seed's lowest-serial-fires-all, for comparison
 *   bun bench/sim.ts --standbys all                   # every position tries (default: 0 and 1, as the agent)
 *
 * Virtual agents run the real placement code (src/coordinator/placement.ts) on a fake clock (no
 * sleeping) against an in-memory store (bench/lib/memory-store.ts) whose claim insert fails on a
 * duplicate `_id`, the rule the real stores use. Events are processed in time order from a
 * priority queue: heartbeats (one renewal, one membership read and one revisions read per agent
 * per h, as the agent makes them), the judge's
 * re-read at a silent member's last_seen + D, occurrence instants (batched per
 * minute), and the day's churn: agents joining, leaving gracefully, dying (and restarting).
 *
 * At each occurrence instant every running, ready agent takes its position for each due job from
 * its OWN membership view (as of its last read, so up to h old, and blind to a death for D), and
 * tries the unique insert at instant + position × failover_step if it is still alive by then.
 * The earliest try wins; the rest are rejected by the store. When every agent holds the same view,
 * that view is the truth and nobody joins, leaves or dies within the stagger window, every agent's
 * decision is read off one cached firing order per job (the same answer, computed once) — which is
 * what makes a simulated day of 100,000 jobs take tens of seconds.
 *
 * Simplifications: runs take no time (takeover of running attempts is not simulated), the store
 * answers instantly on one clock (no skew), final records flush in one batch per agent per try
 * instant. Schedules are plain arithmetic on minute instants (every minute / 5 minutes / hourly /
 * daily), not the product's cron parser.
 */
import { Placer, placeAll, type Member, type PlacementMode, type RunOn } from "../src/coordinator/placement.ts";
import { TRYING_POSITIONS } from "../src/coordinator/untried.ts";
import { MemoryStore, type StoreCounts } from "./lib/memory-store.ts";

export interface SimOptions {
  agents: number;
  jobs: number;
  hours: number;
  seed: number;
  mode: PlacementMode;
  heartbeatSec: number;
  deadAfterSec: number;
  failoverStepSec: number;
  /**
   * Positions 0..standbys−1 try; the rest check with one read per heartbeat (the agent: 2, see
   * src/coordinator/untried.ts). Infinity: every position tries (the protocol before that).
   */
  standbys: number;
  /** Share of jobs with run_on {region: "eu"} (agents alternate eu/us tags). */
  runOnShare: number;
  /** Join, leave, death events per type per 24 h (deaths are followed by a restart). */
  churnPerDay: number;
  maxSerial: number;
  /** Time an agent takes to load its jobs after it starts (not ready until then). */
  loadMs: number;
  /** A fixed churn plan instead of the random one: ms from the start; victims are still picked at random. */
  events?: { at: number; type: "join" | "leave" | "die" | "restart" }[];
}

export const DEFAULTS: SimOptions = {
  agents: 50,
  jobs: 100_000,
  hours: 24,
  seed: 1,
  mode: "spread",
  heartbeatSec: 5,
  deadAfterSec: 15,
  failoverStepSec: 5,
  standbys: TRYING_POSITIONS,
  runOnShare: 0.05,
  churnPerDay: 6,
  maxSerial: 10,
  loadMs: 2000,
};

type Cause = "join" | "leave" | "death" | "restart";

export interface SimResult {
  options: SimOptions;
  wallMs: number;
  occurrences: number;
  runs: number;
  /** Occurrences with more than one winning claim (impossible with a unique insert) or run by two agents. */
  duplicates: number;
  /** Occurrences no agent claimed. */
  misses: number;
  /** Occurrences neither trying position claimed (both gone before their turn), claimed by catch-up after an agent further down checked. */
  caughtUp: number;
  /** Occurrences where two or more agents each believed they were first (split views, e.g. right after a join); settled by the insert. */
  ownerConflicts: number;
  share: {
    /** Jobs owned per agent at the start (weighted by occurrences per day), as a ratio of each agent's fair share given run_on. */
    staticMaxRatio: number;
    staticMinRatio: number;
    /** The same, counting jobs rather than occurrences. */
    staticJobsMaxRatio: number;
    staticJobsMinRatio: number;
    /** Occurrences run per agent over the day, agents up the whole day, vs the mean of their region. */
    dynamicMaxRatio: number;
    dynamicMinRatio: number;
    fullDayAgents: number;
  };
  moved: {
    /** Share of jobs whose owner changes when one agent joins / leaves (static, from the start's membership). */
    onJoin: number;
    onLeave: number;
    expected: number;
    /** Moved jobs not explained by the change (a job moving to someone other than the joiner, or away from someone other than the leaver): must be 0. */
    unexplained: number;
  };
  store: StoreCounts & {
    roundTrips: number;
    roundTripsPerSec: number;
    heartbeatRoundTripsPerSec: number;
    claimDocsPerSec: number;
    roundTripsPerOccurrence: number;
    claimDocsPerOccurrence: number;
  };
  lateness: {
    /** Occurrences fired after their instant (any cause), the largest delay, and by cause. */
    late: number;
    maxMs: number;
    histogram: Record<string, number>;
    byCause: Record<Cause, { events: number; lateOccurrences: number; maxLateMs: number }>;
    /** After each death: ms until every running agent's view had moved the dead agent's jobs. */
    deathToMovedMs: { min: number; max: number; mean: number };
  };
  fastPathInstants: number;
  slowPathInstants: number;
}

// ---------------------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EVENT = { scenario: 0, ready: 1, heartbeat: 2, judge: 3, instant: 4 } as const;
type EventKind = (typeof EVENT)[keyof typeof EVENT];
interface SimEvent {
  at: number;
  kind: EventKind;
  slot: number;
  session: number;
  seq: number;
}

/** Binary min-heap on (at, kind, seq). */
class EventQueue {
  private heap: SimEvent[] = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  push(at: number, kind: EventKind, slot = -1, session = 0): void {
    const e: SimEvent = { at, kind, slot, session, seq: this.seq++ };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
function less(a: SimEvent, b: SimEvent): boolean {
  return a.at !== b.at ? a.at < b.at : a.kind !== b.kind ? a.kind < b.kind : a.seq < b.seq;
}

interface Agent {
  slot: number;
  machineId: string;
  tags: Record<string, string>;
  state: "running" | "dead" | "stopped" | "off";
  session: number;
  ready: boolean;
  serial: number | null;
  view: View | null;
  /** When the judge timer is due (a member's last_seen + D before the next heartbeat), or Infinity. */
  judgeAt: number;
  /** It was third or later in some due job's order since its last heartbeat: that heartbeat checks with one read. */
  untriedPending: boolean;
  /** When this run of the agent ends (death or stop), Infinity when not planned. */
  endsAt: number;
  upMs: number;
  upSince: number;
  runs: number;
  everDown: boolean;
}

/** One membership view (interned by content): the placer over it and the firing orders computed so far. */
interface View {
  key: string;
  /** Slots of the live, ready members, ascending. */
  slots: number[];
  placer: Placer;
  /** memberIndex → slot. */
  slotOf: Int32Array;
  orders: (Uint8Array | undefined)[];
  refs: number;
}

interface Scenario {
  at: number;
  type: "join" | "leave" | "die" | "restart" | "ready";
  slot: number;
}

interface Job {
  key: string;
  runOn: RunOn;
  /** Occurrences per day, for weighting shares. */
  perDay: number;
}

export function simulate(partial: Partial<SimOptions> = {}): SimResult {
  const o: SimOptions = { ...DEFAULTS, ...partial };
  const started = performance.now();
  const rand = mulberry32(o.seed);
  const h = o.heartbeatSec * 1000;
  const D = o.deadAfterSec * 1000;
  const step = o.failoverStepSec * 1000;
  const MIN = 60_000;
  const endMs = Math.round(o.hours * 3600_000);
  const T0 = Date.UTC(2026, 0, 5); // a Monday, 00:00 UTC
  const hex = (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
    return s;
  };

  // ---- jobs: 1% every minute, 9% every 5 min, 30% hourly, 60% daily; tops of hours are busy.
  const EU: RunOn = { region: "eu" };
  const jobs: Job[] = [];
  const every1: number[] = [];
  const every5: number[][] = Array.from({ length: 5 }, () => []);
  const hourly: number[][] = Array.from({ length: 60 }, () => []);
  const daily: number[][] = Array.from({ length: 1440 }, () => []);
  for (let j = 0; j < o.jobs; j++) {
    const r = rand();
    const runOn = rand() < o.runOnShare ? EU : null;
    let perDay: number;
    if (r < 0.01) {
      every1.push(j);
      perDay = 1440;
    } else if (r < 0.1) {
      every5[Math.floor(rand() * 5)]!.push(j);
      perDay = 288;
    } else if (r < 0.4) {
      hourly[rand() < 0.4 ? 0 : Math.floor(rand() * 60)]!.push(j);
      perDay = 24;
    } else {
      const hour = Math.floor(rand() * 24);
      daily[hour * 60 + (rand() < 0.5 ? 0 : Math.floor(rand() * 60))]!.push(j);
      perDay = 1;
    }
    jobs.push({ key: hex(24), runOn, perDay });
  }

  // ---- agents and the day's churn.
  const store = new MemoryStore();
  const agents: Agent[] = [];
  const newAgent = (): Agent => {
    const slot = agents.length;
    if (slot > 255) throw new Error("more than 256 machines: raise the slot width");
    const a: Agent = {
      slot,
      machineId: `fc-${String(slot + 1).padStart(3, "0")}-${hex(8)}`,
      tags: { region: slot % 2 === 0 ? "eu" : "us" },
      state: "off",
      session: 0,
      ready: false,
      serial: null,
      view: null,
      judgeAt: Infinity,
      untriedPending: false,
      endsAt: Infinity,
      upMs: 0,
      upSince: 0,
      runs: 0,
      everDown: false,
    };
    agents.push(a);
    return a;
  };
  for (let i = 0; i < o.agents; i++) newAgent();

  const perType = o.events ? 0 : Math.max(1, Math.round((o.churnPerDay * o.hours) / 24));
  const scenario: Scenario[] = [];
  for (const ev of o.events ?? []) {
    if (ev.type === "join") {
      const joiner = newAgent();
      scenario.push({ at: ev.at, type: "join", slot: joiner.slot }, { at: ev.at + o.loadMs, type: "ready", slot: joiner.slot });
    } else if (ev.type === "restart") scenario.push({ at: ev.at, type: "restart", slot: -1 }, { at: ev.at + o.loadMs, type: "ready", slot: -1 });
    else scenario.push({ at: ev.at, type: ev.type, slot: -1 });
  }
  const when = () => Math.round(endMs * (0.05 + 0.9 * rand()) / 1000) * 1000 + Math.floor(rand() * 1000);
  for (let i = 0; i < perType; i++) {
    const join = when();
    const joiner = newAgent();
    scenario.push({ at: join, type: "join", slot: joiner.slot }, { at: join + o.loadMs, type: "ready", slot: joiner.slot });
    scenario.push({ at: when(), type: "leave", slot: -1 });
    const death = when();
    scenario.push({ at: death, type: "die", slot: -1 });
    const back = death + (2 + Math.floor(rand() * 8)) * MIN;
    if (back < endMs) scenario.push({ at: back, type: "restart", slot: -1 }, { at: back + o.loadMs, type: "ready", slot: -1 });
  }
  if (!o.events && o.hours >= 2 && o.agents >= 4) {
    // Two agents dying one second apart: some jobs lose their first two in order (lateness 2 × step).
    const death = when();
    scenario.push({ at: death, type: "die", slot: -1 }, { at: death + 1000, type: "die", slot: -1 });
  }
  scenario.sort((a, b) => a.at - b.at);
  const scenarioTimes = scenario.map((s) => s.at);

  // ---- placement bookkeeping
  const views = new Map<string, View>();
  const memberOf = (a: Agent, live: boolean, ready: boolean): Member => ({ machineId: a.machineId, serial: a.serial, tags: a.tags, live, ready });
  const scratch = new Int32Array(agents.length + 1);

  const internView = (slots: number[]): View => {
    const key = o.mode === "serial" ? slots.map((s) => `${s}:${agents[s]!.serial}`).join(",") : slots.join(",");
    let v = views.get(key);
    if (v === undefined) {
      const members = slots.map((s) => memberOf(agents[s]!, true, true));
      v = { key, slots, placer: new Placer(members, o.mode), slotOf: Int32Array.from(slots), orders: new Array(o.jobs), refs: 0 };
      views.set(key, v);
    }
    return v;
  };
  const setView = (a: Agent, v: View | null) => {
    if (a.view === v) return;
    if (a.view !== null && --a.view.refs === 0) views.delete(a.view.key);
    a.view = v;
    if (v !== null) v.refs++;
  };
  const orderOf = (v: View, j: number): Uint8Array => {
    let ord = v.orders[j];
    if (ord === undefined) {
      const job = jobs[j]!;
      const n = v.placer.orderInto(job.key, job.runOn, scratch);
      ord = new Uint8Array(n);
      for (let k = 0; k < n; k++) ord[k] = v.slotOf[scratch[k]!]!;
      v.orders[j] = ord;
    }
    return ord;
  };

  /** The membership read: live (seen within D, not stopped) and ready members, this agent included once it is ready. */
  const readView = (a: Agent, now: number) => {
    const slots: number[] = [];
    let judge = Infinity;
    for (const doc of store.listMachines()) {
      const s = slotByMachine.get(doc.machineId)!;
      if (s === a.slot) continue;
      if (doc.stopped || now - doc.lastSeen > D) continue;
      if (doc.ready) slots.push(s);
      judge = Math.min(judge, doc.lastSeen + D + 1);
    }
    if (a.ready) slots.push(a.slot);
    slots.sort((x, y) => x - y);
    setView(a, internView(slots));
    // The judge's timer (docs/protocol.md, "Liveness and the fence"): a member silent until last_seen + D is judged then, not at the next heartbeat.
    if (judge > now && judge < now + h && judge < a.judgeAt) {
      a.judgeAt = judge;
      queue.push(judge, EVENT.judge, a.slot, a.session);
    }
  };
  const slotByMachine = new Map(agents.map((a) => [a.machineId, a.slot]));

  const renew = (a: Agent, now: number) =>
    store.renew({ machineId: a.machineId, session: a.session, ready: a.ready, stopped: false, serial: a.serial, tags: a.tags }, now);

  const takeSerial = (a: Agent) => {
    if (o.mode !== "serial") return;
    const held = new Set(agents.filter((b) => b.state === "running" && b.serial !== null).map((b) => b.serial));
    for (let n = 1; n <= o.maxSerial; n++) if (!held.has(n)) return void (a.serial = n);
    a.serial = null;
  };

  const queue = new EventQueue();
  // Start: every initial agent is up, ready and has heartbeated within the last h (random phase).
  for (const a of agents.slice(0, o.agents)) {
    a.state = "running";
    a.ready = true;
    a.session = 1;
    a.upSince = 0;
    takeSerial(a);
    const phase = Math.floor(rand() * h);
    store.renew({ machineId: a.machineId, session: 1, ready: true, stopped: false, serial: a.serial, tags: a.tags }, phase - h);
    queue.push(phase, EVENT.heartbeat, a.slot, 1);
  }
  for (const a of agents.slice(0, o.agents)) readView(a, 0);
  for (const s of scenario) queue.push(s.at, s.type === "ready" ? EVENT.ready : EVENT.scenario, scenario.indexOf(s), 0);
  for (let t = 0; t < endMs; t += MIN) queue.push(t, EVENT.instant);

  // ---- outcome tallies
  const maxPos = Math.min(agents.length, o.standbys === Infinity ? agents.length : o.standbys);
  const tryMarks = new Uint8Array(agents.length * agents.length);
  const winMarks = new Uint8Array(agents.length * agents.length);
  let occurrences = 0;
  let runs = 0;
  let duplicates = 0;
  let misses = 0;
  let caughtUp = 0;
  let ownerConflicts = 0;
  let fastPath = 0;
  let onTimeFast = 0;
  let slowPath = 0;
  const histogram = new Map<number, number>();
  const byCause: SimResult["lateness"]["byCause"] = {
    join: { events: 0, lateOccurrences: 0, maxLateMs: 0 },
    leave: { events: 0, lateOccurrences: 0, maxLateMs: 0 },
    death: { events: 0, lateOccurrences: 0, maxLateMs: 0 },
    restart: { events: 0, lateOccurrences: 0, maxLateMs: 0 },
  };
  let lastCause: Cause | null = null;
  const pendingDeaths: { slot: number; at: number; session: number }[] = [];
  const deathToMoved: number[] = [];
  const isoCache = new Map<number, string>();

  const running = (): Agent[] => agents.filter((a) => a.state === "running" && a.ready);

  /** After a view change: a death is "moved" once no running agent's view still lists the dead agent. */
  const checkDeaths = (now: number) => {
    for (let i = pendingDeaths.length - 1; i >= 0; i--) {
      const d = pendingDeaths[i]!;
      const dead = agents[d.slot]!;
      if (dead.state === "running" && dead.session !== d.session) {
        pendingDeaths.splice(i, 1); // restarted before everyone noticed
        continue;
      }
      if (agents.every((a) => a.state !== "running" || a.view === null || !a.view.slots.includes(d.slot))) {
        deathToMoved.push(now - d.at);
        pendingDeaths.splice(i, 1);
      }
    }
  };

  const pick = (pred: (a: Agent) => boolean): Agent | undefined => {
    const c = agents.filter(pred);
    return c.length === 0 ? undefined : c[Math.floor(rand() * c.length)];
  };
  const up = (a: Agent, now: number) => {
    a.state = "running";
    a.session++;
    a.ready = false;
    a.upSince = now;
    a.judgeAt = Infinity;
    takeSerial(a);
    renew(a, now);
    readView(a, now);
    queue.push(now + h, EVENT.heartbeat, a.slot, a.session);
  };
  const down = (a: Agent, now: number, state: "dead" | "stopped") => {
    a.state = state;
    a.ready = false;
    a.everDown = true;
    a.upMs += now - a.upSince;
    a.serial = null;
    setView(a, null);
  };

  const instant = (t: number) => {
    const minute = Math.floor(t / MIN) % 1440;
    const due = [every1, every5[minute % 5]!, hourly[minute % 60]!, daily[minute]!];
    const R = running();
    // Fast path: all agents agree, their view is the truth, and nobody comes or goes within the stagger window.
    const v0 = R[0]?.view ?? null;
    const agree = v0 !== null && R.every((a) => a.view === v0) && v0.slots.length === R.length && R.every((a, i) => v0.slots[i] === a.slot);
    const horizon = t + (Math.min(v0?.slots.length ?? agents.length, maxPos) - 1) * step;
    const nextEvent = scenarioTimes.find((x) => x >= t) ?? Infinity;
    const fast = agree && nextEvent > horizon;
    if (fast) fastPath++;
    else slowPath++;
    let iso = isoCache.get(t);
    if (iso === undefined) isoCache.set(t, (iso = new Date(T0 + t).toISOString()));
    const n = agents.length;
    const causeWindow = lastCause !== null && t - lastEventAt < D + 2 * h + maxPos * step;

    for (const list of due) {
      for (const j of list) {
        occurrences++;
        const id = `${jobs[j]!.key}@${iso}`;
        if (fast) {
          const ord = orderOf(v0!, j);
          if (ord.length === 0) {
            misses++;
            continue;
          }
          const tries = Math.min(ord.length, maxPos);
          for (let k = tries; k < ord.length; k++) agents[ord[k]!]!.untriedPending = true;
          let wins = 0;
          for (let k = 0; k < tries; k++) {
            const s = ord[k]!;
            tryMarks[s * n + k] = 1;
            if (store.insertClaim(id, s, t)) {
              wins++;
              winMarks[s * n + k] = 1;
              agents[s]!.runs++;
            }
          }
          runs += wins;
          if (wins > 1) duplicates++;
          onTimeFast++;
          continue;
        }
        // Slow path: each agent from its own view.
        let best = Infinity;
        let zeroes = 0;
        const tries: { at: number; slot: number; pos: number }[] = [];
        // An agent further down that is still up when the tryers' turns are over and it next checks.
        let checker: Agent | undefined;
        for (const a of R) {
          const ord = orderOf(a.view!, j);
          const pos = ord.indexOf(a.slot);
          if (pos >= maxPos) {
            a.untriedPending = true;
            if (!checker && a.endsAt > t + maxPos * step + h) checker = a;
          }
          if (pos < 0 || pos >= maxPos) continue;
          const at = t + pos * step;
          if (a.endsAt <= at) continue; // dead or stopped before its turn
          if (pos === 0) zeroes++;
          tries.push({ at, slot: a.slot, pos });
          best = Math.min(best, at);
        }
        if (zeroes > 1) ownerConflicts++;
        if (tries.length === 0) {
          // Neither trying position was up for its turn: the checker finds it unclaimed and catches it up.
          if (checker) {
            caughtUp++;
            runs++;
            checker.runs++;
          } else {
            misses++;
          }
          continue;
        }
        tries.sort((x, y) => x.at - y.at || x.slot - y.slot);
        let wins = 0;
        for (const tr of tries) {
          tryMarks[tr.slot * n + tr.pos] = 1;
          if (store.insertClaim(id, tr.slot, t)) {
            wins++;
            winMarks[tr.slot * n + tr.pos] = 1;
            agents[tr.slot]!.runs++;
          }
        }
        runs += wins;
        if (wins > 1) duplicates++;
        const late = best - t;
        histogram.set(late, (histogram.get(late) ?? 0) + 1);
        if (late > 0 && causeWindow) {
          const c = byCause[lastCause!];
          c.lateOccurrences++;
          c.maxLateMs = Math.max(c.maxLateMs, late);
        }
      }
    }
    let claimBatches = 0;
    let finalBatches = 0;
    for (let i = 0; i < tryMarks.length; i++) {
      if (tryMarks[i] === 1) {
        claimBatches++;
        tryMarks[i] = 0;
      }
      if (winMarks[i] === 1) {
        finalBatches++;
        winMarks[i] = 0;
      }
    }
    store.claimBatches(claimBatches);
    store.writeFinals(0, finalBatches); // documents: one per run, added at the end
    store.prune(t - (maxPos + 2) * step - MIN);
  };
  let lastEventAt = -Infinity;

  // ---- run
  for (let e = queue.pop(); e !== undefined; e = queue.pop()) {
    const now = e.at;
    if (e.kind === EVENT.instant) {
      instant(now);
      continue;
    }
    if (e.kind === EVENT.heartbeat || e.kind === EVENT.judge) {
      const a = agents[e.slot]!;
      if (a.state !== "running" || a.session !== e.session) continue;
      if (e.kind === EVENT.judge) {
        if (a.judgeAt !== now) continue;
        a.judgeAt = Infinity;
      } else if (now + h < endMs) {
        queue.push(now + h, EVENT.heartbeat, a.slot, a.session);
      }
      if (now >= endMs) continue;
      renew(a, now);
      readView(a, now);
      store.readRevisions();
      if (a.untriedPending) {
        store.checkUntried();
        a.untriedPending = false;
      }
      checkDeaths(now);
      continue;
    }
    const s = scenario[e.slot]!;
    if (s.type === "ready") {
      if (s.slot < 0) continue; // the restart it follows did not happen
      const a = agents[s.slot]!;
      if (a.state !== "running") continue;
      a.ready = true;
      renew(a, now); // announces ready at once
      readView(a, now);
      continue;
    }
    lastEventAt = now;
    if (s.type === "join") {
      up(agents[s.slot]!, now);
      lastCause = "join";
    } else if (s.type === "leave") {
      const a = pick((b) => b.state === "running" && b.ready);
      if (a === undefined || running().length <= 2) continue;
      store.markStopped(a.machineId, now);
      a.endsAt = now;
      down(a, now, "stopped");
      lastCause = "leave";
    } else if (s.type === "die") {
      const a = pick((b) => b.state === "running" && b.ready);
      if (a === undefined || running().length <= 2) continue;
      a.endsAt = now;
      down(a, now, "dead");
      pendingDeaths.push({ slot: a.slot, at: now, session: a.session });
      lastCause = "death";
    } else if (s.type === "restart") {
      const a = pick((b) => b.state === "dead");
      if (a === undefined) continue;
      a.endsAt = Infinity;
      up(a, now);
      // Its "ready" scenario entry follows loadMs later; bind it to this agent.
      const next = scenario.find((x) => x.type === "ready" && x.slot === -1 && x.at === now + o.loadMs);
      if (next) next.slot = a.slot;
      lastCause = "restart";
    }
    byCause[lastCause!].events++;
  }
  for (const a of agents) if (a.state === "running") a.upMs += endMs - a.upSince;
  histogram.set(0, (histogram.get(0) ?? 0) + onTimeFast);
  store.writeFinals(runs, 0);

  // ---- static figures: share per agent and moved share on join/leave, from the start's membership.
  const initial = agents.slice(0, o.agents).map((a) => ({ ...memberOf(a, true, true), serial: o.mode === "serial" ? a.slot + 1 <= o.maxSerial ? a.slot + 1 : null : null }));
  const keys = jobs.map((j) => j.key);
  const runOnOf = (i: number) => jobs[i]!.runOn;
  const base = placeAll(keys, initial, o.mode, { runOn: runOnOf }).owners;
  const fair = new Map<string, number>();
  const owned = new Map<string, number>();
  const fairJobs = new Map<string, number>();
  const ownedJobs = new Map<string, number>();
  const euCount = initial.filter((m) => m.tags.region === "eu").length;
  jobs.forEach((job, i) => {
    for (const m of initial) {
      const eligible = job.runOn === null ? initial.length : m.tags.region === "eu" ? euCount : 0;
      if (eligible > 0) fair.set(m.machineId, (fair.get(m.machineId) ?? 0) + job.perDay / eligible);
      if (eligible > 0) fairJobs.set(m.machineId, (fairJobs.get(m.machineId) ?? 0) + 1 / eligible);
    }
    const ow = base[i];
    if (ow) owned.set(ow, (owned.get(ow) ?? 0) + job.perDay);
    if (ow) ownedJobs.set(ow, (ownedJobs.get(ow) ?? 0) + 1);
  });
  const staticRatios = initial.map((m) => (owned.get(m.machineId) ?? 0) / (fair.get(m.machineId) ?? 1));
  const staticJobRatios = initial.map((m) => (ownedJobs.get(m.machineId) ?? 0) / (fairJobs.get(m.machineId) ?? 1));
  const joiner: Member = { machineId: "fc-joiner-00000000", serial: null, tags: { region: "us" }, live: true, ready: true };
  const withJoin = placeAll(keys, [...initial, joiner], o.mode, { runOn: runOnOf }).owners;
  const leaver = initial[1]!; // a "us" member (no run_on job can lose its only candidates)
  const withLeave = placeAll(keys, initial.map((m) => (m === leaver ? { ...m, live: false } : m)), o.mode, { runOn: runOnOf }).owners;
  let movedJoin = 0;
  let movedLeave = 0;
  let unexplained = 0;
  for (let i = 0; i < keys.length; i++) {
    if (withJoin[i] !== base[i]) {
      movedJoin++;
      if (withJoin[i] !== joiner.machineId) unexplained++;
    }
    if (withLeave[i] !== base[i]) {
      movedLeave++;
      if (base[i] !== leaver.machineId) unexplained++;
    }
  }

  // Dynamic share: agents up all day, against the mean of their region (run_on jobs favour eu).
  const fullDay = agents.filter((a) => a.slot < o.agents && !a.everDown);
  const dynRatios: number[] = [];
  for (const region of ["eu", "us"]) {
    const group = fullDay.filter((a) => a.tags.region === region);
    const mean = group.reduce((s, a) => s + a.runs, 0) / Math.max(1, group.length);
    for (const a of group) dynRatios.push(mean > 0 ? a.runs / mean : 1);
  }

  const c = store.counts;
  const seconds = endMs / 1000;
  const roundTrips = c.claimBatches + c.heartbeatWrites + c.membershipReads + c.revisionReads + c.untriedChecks + c.finalBatches;
  const lateValues = [...histogram.entries()].filter(([ms]) => ms > 0);
  const hist: Record<string, number> = {};
  for (const [ms, count] of [...histogram.entries()].sort((a, b) => a[0] - b[0])) hist[`${ms / 1000}s`] = count;
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    options: o,
    wallMs: Math.round(performance.now() - started),
    occurrences,
    runs,
    duplicates,
    misses,
    caughtUp,
    ownerConflicts,
    share: {
      staticMaxRatio: Math.max(...staticRatios),
      staticMinRatio: Math.min(...staticRatios),
      staticJobsMaxRatio: Math.max(...staticJobRatios),
      staticJobsMinRatio: Math.min(...staticJobRatios),
      dynamicMaxRatio: dynRatios.length ? Math.max(...dynRatios) : NaN,
      dynamicMinRatio: dynRatios.length ? Math.min(...dynRatios) : NaN,
      fullDayAgents: fullDay.length,
    },
    moved: { onJoin: movedJoin / keys.length, onLeave: movedLeave / keys.length, expected: 1 / o.agents, unexplained },
    store: {
      ...c,
      roundTrips,
      roundTripsPerSec: roundTrips / seconds,
      heartbeatRoundTripsPerSec: (c.heartbeatWrites + c.membershipReads + c.revisionReads) / seconds,
      claimDocsPerSec: c.claimDocs / seconds,
      roundTripsPerOccurrence: roundTrips / Math.max(1, occurrences),
      claimDocsPerOccurrence: c.claimDocs / Math.max(1, occurrences),
    },
    lateness: {
      late: lateValues.reduce((s, [, n]) => s + n, 0),
      maxMs: lateValues.reduce((m, [ms]) => Math.max(m, ms), 0),
      histogram: hist,
      byCause,
      deathToMovedMs: { min: deathToMoved.length ? Math.min(...deathToMoved) : NaN, max: deathToMoved.length ? Math.max(...deathToMoved) : NaN, mean: mean(deathToMoved) },
    },
    fastPathInstants: fastPath,
    slowPathInstants: slowPath,
  };
}

// ---------------------------------------------------------------------------------------------

function parseArgs(argv: string[]): { options: Partial<SimOptions>; json: boolean } {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return argv[i + 1];
    return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  };
  const num = (name: string): number | undefined => {
    const raw = value(name);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got "${raw}"`);
    return n;
  };
  const options: Partial<SimOptions> = {};
  const set = <K extends keyof SimOptions>(k: K, v: SimOptions[K] | undefined) => {
    if (v !== undefined) options[k] = v;
  };
  set("agents", num("agents"));
  set("jobs", num("jobs"));
  set("hours", num("hours"));
  set("seed", num("seed"));
  // `--standbys all`: every position tries (the protocol before src/coordinator/untried.ts).
  set("standbys", value("standbys") === "all" ? Infinity : num("standbys"));
  set("churnPerDay", num("churn"));
  set("runOnShare", num("run-on-share"));
  const mode = value("mode");
  if (mode !== undefined && mode !== "spread" && mode !== "serial") throw new Error(`--mode: "spread" or "serial", got "${mode}"`);
  set("mode", mode as PlacementMode | undefined);
  if ((options.agents ?? DEFAULTS.agents) < 2) throw new Error("--agents: at least 2");
  return { options, json: argv.includes("--json") };
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const fmt = (x: number, d = 1) => x.toLocaleString("en-US", { maximumFractionDigits: d });

export function formatReport(r: SimResult): string {
  const o = r.options;
  const s = r.store;
  const lines = [
    `# FleetCron placement simulation`,
    ``,
    `${o.agents} agents, ${fmt(o.jobs, 0)} jobs, ${o.hours} h simulated, seed ${o.seed}, placement "${o.mode}", h = ${o.heartbeatSec} s, D = ${o.deadAfterSec} s, step = ${o.failoverStepSec} s, standbys ${o.standbys === Infinity ? "all" : o.standbys}; ${fmt(r.wallMs / 1000)} s wall (${r.fastPathInstants} instants where all views agreed, ${r.slowPathInstants} decided agent by agent)`,
    ``,
    `| measure | value |`,
    `|---|---|`,
    `| occurrences | ${fmt(r.occurrences, 0)} |`,
    `| runs | ${fmt(r.runs, 0)} |`,
    `| duplicates (occurrences with > 1 winning claim / run by two agents) | ${r.duplicates} |`,
    `| misses (occurrences nobody claimed) | ${r.misses} |`,
    `| caught up (neither of the first two claimed; an agent further down checked and caught it up) | ${r.caughtUp} |`,
    `| owner conflicts settled by the unique insert (≥ 2 agents first in their own view) | ${fmt(r.ownerConflicts, 0)} |`,
    `| jobs owned per agent at the start (max / min vs fair share, given run_on) | ${r.share.staticJobsMaxRatio.toFixed(3)} / ${r.share.staticJobsMinRatio.toFixed(3)} |`,
    `| the same weighted by occurrences per day (work share) | ${r.share.staticMaxRatio.toFixed(3)} / ${r.share.staticMinRatio.toFixed(3)} |`,
    `| occurrences run per agent over the run, ${r.share.fullDayAgents} agents never down (max / min vs their region's mean) | ${r.share.dynamicMaxRatio.toFixed(3)} / ${r.share.dynamicMinRatio.toFixed(3)} |`,
    `| jobs whose owner changes when one agent joins (expected ≈ 1/${o.agents + 1} = ${pct(1 / (o.agents + 1))}) | ${pct(r.moved.onJoin)} |`,
    `| jobs whose owner changes when one agent leaves (expected ≈ 1/${o.agents} = ${pct(1 / o.agents)}) | ${pct(r.moved.onLeave)} |`,
    `| moved jobs not explained by the joiner/leaver (must be 0) | ${r.moved.unexplained} |`,
    `| store round trips per second (all) | ${fmt(s.roundTripsPerSec)} |`,
    `|   of which heartbeats (renewal + membership read + revisions read) | ${fmt(s.heartbeatRoundTripsPerSec)} |`,
    `|   claim round trips (insertMany batches) / final-record batches / untried checks per second | ${fmt(s.claimBatches / (o.hours * 3600))} / ${fmt(s.finalBatches / (o.hours * 3600))} / ${fmt(s.untriedChecks / (o.hours * 3600))} |`,
    `| claim documents per second (winning + rejected) | ${fmt(s.claimDocsPerSec)} |`,
    `| per occurrence: round trips / claim documents / rejected claims | ${s.roundTripsPerOccurrence.toFixed(3)} / ${s.claimDocsPerOccurrence.toFixed(2)} / ${(s.claimsRejected / Math.max(1, r.occurrences)).toFixed(2)} |`,
    `| occurrences fired late (any cause) / latest | ${fmt(r.lateness.late, 0)} / ${r.lateness.maxMs / 1000} s |`,
  ];
  for (const [cause, c] of Object.entries(r.lateness.byCause)) {
    if (c.events > 0) lines.push(`| after a ${cause} (${c.events} events): late occurrences / latest | ${fmt(c.lateOccurrences, 0)} / ${c.maxLateMs / 1000} s |`);
  }
  const dm = r.lateness.deathToMovedMs;
  if (Number.isFinite(dm.max)) lines.push(`| death → every view has moved its jobs (min / mean / max) | ${fmt(dm.min / 1000)} / ${fmt(dm.mean / 1000)} / ${fmt(dm.max / 1000)} s |`);
  lines.push(``, `Lateness histogram (fire time − instant → occurrences): ${Object.entries(r.lateness.histogram).map(([k, v]) => `${k}: ${fmt(v, 0)}`).join(", ")}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const { options, json } = parseArgs(Bun.argv.slice(2));
  const result = simulate(options);
  if (json) console.log(JSON.stringify({ ...result, options: { ...result.options, standbys: result.options.standbys === Infinity ? "all" : result.options.standbys } }, null, 2));
  else console.log(formatReport(result));
}
