import { StoreError } from "../core/errors.ts";
import type { ClaimOutcome, RunRecord, Store } from "../store/types.ts";

/**
 * Claims (docs/protocol.md, "Claims"): every decision about an occurrence — run it, skip it, record
 * it missed — is a unique-`_id` insert into `job_runs`, and all an agent makes at one instant go in
 * one batch. A duplicate key is the only "lost"; any other failure leaves the record's fate
 * unknown until a read-back finds it carrying this claim's nonce (ours) or not (someone else's, or
 * not written at all).
 */

export type SettledClaim = "won" | "lost" | "failed";

export interface ClaimResult {
  run: RunRecord;
  outcome: SettledClaim;
}

export function newNonce(): string {
  return crypto.randomUUID().slice(0, 13);
}

/** One round trip in the common case; a second (a read by `_id`) only for records left unknown. */
export async function claimBatch(store: Pick<Store, "insertRuns" | "getRuns">, runs: RunRecord[]): Promise<ClaimResult[]> {
  if (runs.length === 0) return [];
  let outcomes: ClaimOutcome[];
  try {
    outcomes = await store.insertRuns(runs);
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    outcomes = runs.map(() => "unknown");
  }
  const unknown = runs.filter((_, i) => outcomes[i] === "unknown");
  const stored = new Map<string, RunRecord>();
  let readBackFailed = false;
  if (unknown.length > 0) {
    try {
      for (const run of await store.getRuns(unknown.map((r) => r._id))) stored.set(run._id, run);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      readBackFailed = true;
    }
  }
  return runs.map((run, i) => {
    const outcome = outcomes[i];
    if (outcome === "won" || outcome === "lost") return { run, outcome };
    if (readBackFailed) return { run, outcome: "failed" };
    const found = stored.get(run._id);
    if (!found) return { run, outcome: "failed" };
    return { run, outcome: found.nonce !== undefined && found.nonce === run.nonce ? "won" : "lost" };
  });
}
