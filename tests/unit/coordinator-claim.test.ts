import { describe, expect, test } from "bun:test";
import { StoreError } from "../../src/core/errors.ts";
import { claimBatch, newNonce } from "../../src/coordinator/claim.ts";
import type { ClaimOutcome } from "../../src/store/types.ts";
import { FakeStore, runRecord } from "../support/fake-store.ts";

/**
 * claimBatch (docs/protocol.md, "Claims"): only a duplicate key is "lost"; anything else is settled
 * by reading the record back and comparing nonces, and what cannot be settled is "failed".
 */

const at = (minute: number) => new Date(Date.UTC(2030, 0, 1, 0, minute));
const claim = (minute: number, nonce = `mine-${minute}`) => runRecord({ scheduled_for: at(minute), run_id: `job-1@${at(minute).toISOString()}`, nonce, session: "s-me", machine_id: "m-me" });
const outcomes = (results: { outcome: string }[]) => results.map((r) => r.outcome);

describe("claimBatch", () => {
  test("an empty batch makes no store call", async () => {
    const store = new FakeStore();
    expect(await claimBatch(store, [])).toEqual([]);
    expect(store.calls).toEqual([]);
  });

  test("won and lost pass through in order, with one insert and no read-back", async () => {
    const store = new FakeStore(claim(1, "theirs"));
    const runs = [claim(0), claim(1), claim(2)];
    const results = await claimBatch(store, runs);
    expect(outcomes(results)).toEqual(["won", "lost", "won"]);
    expect(results.map((r) => r.run)).toEqual(runs);
    expect(store.count("insertRuns")).toBe(1);
    expect(store.count("getRuns")).toBe(0);
  });

  test("unknown outcomes are read back by _id: our nonce is won, another nonce lost, absent failed", async () => {
    const store = new FakeStore(claim(1, "theirs"));
    const runs = [claim(0), claim(1), claim(2), claim(3)];
    store.dropInserts = new Set([2]); // the backend never wrote the third record
    store.insertOutcomes = (_runs, real) => real.map((o, i): ClaimOutcome => (i === 3 ? o : "unknown"));
    const results = await claimBatch(store, runs);
    expect(outcomes(results)).toEqual(["won", "lost", "failed", "won"]);
    // Only the unknown ones are read back, in one read.
    expect(store.argsOf<string[]>("getRuns")).toEqual([[runs[0]!._id, runs[1]!._id, runs[2]!._id]]);
  });

  test("a stored record without a nonce is not ours, even when ours has none either", async () => {
    const store = new FakeStore({ ...claim(0), nonce: undefined });
    store.insertOutcomes = (runs) => runs.map(() => "unknown");
    const results = await claimBatch(store, [{ ...claim(0), nonce: undefined }]);
    expect(outcomes(results)).toEqual(["lost"]);
  });

  test("a StoreError from insertRuns makes every record unknown, settled by read-back", async () => {
    const store = new FakeStore(claim(1, "theirs"));
    // The batch reached the store and was applied; only the acknowledgement was lost.
    store.failNext("insertRuns", 1, new StoreError("connection reset"), true);
    store.dropInserts = new Set([2]);
    const runs = [claim(0), claim(1), claim(2)];
    const results = await claimBatch(store, runs);
    expect(outcomes(results)).toEqual(["won", "lost", "failed"]);
    expect(store.argsOf<string[]>("getRuns")).toEqual([runs.map((r) => r._id)]);
  });

  test("a StoreError before anything was written leaves everything failed, not lost", async () => {
    const store = new FakeStore();
    store.failNext("insertRuns");
    expect(outcomes(await claimBatch(store, [claim(0), claim(1)]))).toEqual(["failed", "failed"]);
  });

  test("a failed read-back makes the unknown records failed and keeps won/lost", async () => {
    const store = new FakeStore(claim(1, "theirs"));
    store.insertOutcomes = (_runs, real) => real.map((o, i): ClaimOutcome => (i === 2 ? "unknown" : o));
    store.failNext("getRuns");
    const results = await claimBatch(store, [claim(0), claim(1), claim(2)]);
    // The third record was in fact written with our nonce, but nobody could see it: failed.
    expect(outcomes(results)).toEqual(["won", "lost", "failed"]);
  });

  test("a non-StoreError from insertRuns propagates", async () => {
    const store = new FakeStore();
    store.failNext("insertRuns", 1, new TypeError("bug in the backend"));
    await expect(claimBatch(store, [claim(0)])).rejects.toThrow(TypeError);
  });

  test("a non-StoreError from the read-back propagates", async () => {
    const store = new FakeStore();
    store.insertOutcomes = (runs) => runs.map(() => "unknown");
    store.failNext("getRuns", 1, new RangeError("bug in the read"));
    await expect(claimBatch(store, [claim(0)])).rejects.toThrow(RangeError);
  });

  test("newNonce is random per claim", () => {
    const nonces = new Set(Array.from({ length: 100 }, newNonce));
    expect(nonces.size).toBe(100);
  });
});
