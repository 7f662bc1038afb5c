import { describe, expect, test } from "bun:test";
import { applyJobs } from "../../src/control/jobs.ts";
import { StoreError } from "../../src/core/errors.ts";
import { parseJobDocument } from "../../src/jobs/schema.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/types.ts";

/**
 * Review finding k: what the store would refuse is a validation problem, and `jobs apply` writes
 * all of a file or none of it.
 */
const job = (name: string, extra: Record<string, unknown> = {}) => ({ name, every: "1m", url: "http://127.0.0.1:9/x", ...extra });

function problemsOf(doc: Record<string, unknown>) {
  const result = parseJobDocument(doc, { secretKeys: [], id: "x" });
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

describe("documents a MongoDB-compatible store refuses are invalid", () => {
  test("a dotted key anywhere in the document", () => {
    expect(problemsOf(job("dotted", { method: "POST", body: { "a.b": 1 } }))).toEqual([
      'body["a.b"]: keys containing "." cannot be stored (MongoDB-compatible stores read them as paths; FerretDB refuses them); rename "a.b"',
    ]);
  });

  test("an array inside an array", () => {
    const found = problemsOf(job("nested", { method: "POST", body: { rows: [[1, 2], [3]] } }));
    expect(found).toHaveLength(2);
    expect(found[0]).toContain("body.rows[0]: is an array inside an array");
  });

  test("ordinary keys and arrays of objects are fine", () => {
    expect(problemsOf(job("fine", { method: "POST", body: { rows: [{ items: [1, 2] }], "a-b": "ok" } }))).toEqual([]);
  });
});

/** A store whose `method` fails on its `nth` call (1-based). */
function failingOn(store: Store, method: keyof Store, nth: number): Store {
  let calls = 0;
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (key !== method || typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (++calls === nth) throw new StoreError(`${String(method)} refused (test)`);
        return value.apply(target, args);
      };
    },
  });
}

const snapshot = async (store: Store) => (await store.listJobs()).map(({ _id, ...doc }) => [_id, doc.name, doc.every, doc.updated_at]);

describe("jobs apply is all or nothing", () => {
  test("a refused create undoes the creates and updates before it; the revision moves so agents reread", async () => {
    const store = openSqliteStore(":memory:");
    await applyJobs(store, [{ name: "kept", doc: job("kept") }, { name: "gone", doc: job("gone") }], { prune: false, now: 1000 });
    const before = await snapshot(store);
    const revision = await store.getJobsRevision();
    const docs = [
      { name: "kept", doc: job("kept", { every: "5m" }) },
      { name: "new-1", doc: job("new-1") },
      { name: "new-2", doc: job("new-2") },
    ];
    const error = await applyJobs(failingOn(store, "createJob", 2), docs, { prune: true, now: 2000 }).catch((e) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("nothing was changed");
    expect(await snapshot(store)).toEqual(before);
    expect(await store.getJobsRevision()).not.toBe(revision);
    await store.close();
  });

  test("a refused prune puts back what it deleted, under the same id", async () => {
    const store = openSqliteStore(":memory:");
    await applyJobs(store, ["a", "b", "c"].map((name) => ({ name, doc: job(name) })), { prune: false, now: 1000 });
    const before = await snapshot(store);
    const error = await applyJobs(failingOn(store, "deleteJob", 2), [{ name: "a", doc: job("a") }], { prune: true, now: 2000 }).catch((e) => e as Error);
    expect((error as Error).message).toContain("deleteJob refused");
    expect(await snapshot(store)).toEqual(before);
    await store.close();
  });
});
