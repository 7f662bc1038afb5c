import { StoreError } from "../../src/core/errors.ts";
import type { ClaimOutcome, FinalWrite, RunRecord, Store } from "../../src/store/types.ts";

/**
 * An in-memory `job_runs` with the semantics of the store port (unique `_id` insert, final writes
 * only to attempts still `running`) and per-method fault injection, so the coordinator modules can
 * be driven through every outcome a real backend can produce without one.
 */

export type FakeMethod = "insertRuns" | "getRuns" | "finishRuns" | "listRunning";

interface Fault {
  times: number;
  error: unknown;
  /** insertRuns only: apply the inserts, then throw (a network error after sending). */
  afterApplying: boolean;
}

export class FakeStore implements Pick<Store, FakeMethod> {
  readonly runs = new Map<string, RunRecord>();
  /** Every call, in order, with a copy of its argument. */
  readonly calls: { method: FakeMethod; arg: unknown }[] = [];
  /** Rewrites insertRuns' per-record outcomes after the inserts were applied (e.g. to report `unknown`). */
  insertOutcomes: ((runs: RunRecord[], outcomes: ClaimOutcome[]) => ClaimOutcome[]) | null = null;
  /** insertRuns does not write the records at these indexes (an insert the backend dropped). */
  dropInserts = new Set<number>();
  private faults = new Map<FakeMethod, Fault[]>();

  constructor(...runs: RunRecord[]) {
    this.seed(...runs);
  }

  seed(...runs: RunRecord[]): this {
    for (const run of runs) this.runs.set(run._id, structuredClone(run));
    return this;
  }

  /** The next `times` calls of `method` throw `error` (a StoreError unless told). */
  failNext(method: FakeMethod, times = 1, error: unknown = new StoreError(`injected ${method} failure`), afterApplying = false): this {
    const list = this.faults.get(method) ?? [];
    list.push({ times, error, afterApplying });
    this.faults.set(method, list);
    return this;
  }

  count(method: FakeMethod): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  argsOf<T>(method: FakeMethod): T[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.arg as T);
  }

  get(id: string): RunRecord | undefined {
    return this.runs.get(id);
  }

  private fault(method: FakeMethod): Fault | null {
    const list = this.faults.get(method);
    const fault = list?.[0];
    if (!fault) return null;
    if (--fault.times <= 0) list!.shift();
    return fault;
  }

  async insertRuns(runs: RunRecord[]): Promise<ClaimOutcome[]> {
    this.calls.push({ method: "insertRuns", arg: structuredClone(runs) });
    const fault = this.fault("insertRuns");
    if (fault && !fault.afterApplying) throw fault.error;
    const outcomes = runs.map((run, i): ClaimOutcome => {
      if (this.runs.has(run._id)) return "lost";
      if (!this.dropInserts.has(i)) this.runs.set(run._id, structuredClone(run));
      return "won";
    });
    if (fault) throw fault.error;
    return this.insertOutcomes ? this.insertOutcomes(runs, outcomes) : outcomes;
  }

  async getRuns(ids: string[]): Promise<RunRecord[]> {
    this.calls.push({ method: "getRuns", arg: [...ids] });
    const fault = this.fault("getRuns");
    if (fault) throw fault.error;
    return ids.flatMap((id) => (this.runs.has(id) ? [structuredClone(this.runs.get(id)!)] : []));
  }

  async finishRuns(finals: FinalWrite[]): Promise<void> {
    this.calls.push({ method: "finishRuns", arg: structuredClone(finals) });
    const fault = this.fault("finishRuns");
    if (fault) throw fault.error;
    for (const { id, patch } of finals) {
      const current = this.runs.get(id);
      if (current?.status === "running") this.runs.set(id, { ...current, ...structuredClone(patch), _id: id });
    }
  }

  async listRunning(machineId?: string): Promise<RunRecord[]> {
    this.calls.push({ method: "listRunning", arg: machineId });
    const fault = this.fault("listRunning");
    if (fault) throw fault.error;
    return [...this.runs.values()].filter((r) => r.status === "running" && (machineId === undefined || r.machine_id === machineId)).map((r) => structuredClone(r));
  }

  /** A full Store for APIs typed so: the fake's methods, and a loud failure for anything else. */
  asStore(): Store {
    return new Proxy(this, {
      get(target, key, receiver) {
        if (key === "kind") return "sqlite";
        if (key === "location") return ":fake:";
        const value = Reflect.get(target, key, receiver);
        if (typeof value === "function") return value.bind(target);
        if (value !== undefined) return value;
        return () => {
          throw new Error(`FakeStore: ${String(key)} is not faked`);
        };
      },
    }) as unknown as Store;
  }
}

/** A `running` attempt record with sensible defaults. */
export function runRecord(over: Partial<RunRecord> & { _id?: string } = {}): RunRecord {
  const scheduled = over.scheduled_for ?? new Date("2030-01-01T00:00:00.000Z");
  const runId = over.run_id ?? `job-1@${scheduled.toISOString()}`;
  const attempt = over.attempt ?? 1;
  return {
    _id: over._id ?? (attempt === 1 ? runId : `${runId}#${attempt}`),
    run_id: runId,
    job_id: "job-1",
    job_name: "job one",
    scheduled_for: scheduled,
    attempt,
    trigger: "schedule",
    status: "running",
    machine_id: "m-a",
    session: "s-a",
    nonce: "nonce-a",
    claimed_at: scheduled,
    started_at: scheduled,
    ...over,
  };
}
