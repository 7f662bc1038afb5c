import { describe, expect, test } from "bun:test";
import { maskDocument, recordAudit } from "../../src/control/audit.ts";
import { applyJobs, deleteJobByName, setEnabled } from "../../src/control/jobs.ts";
import { createRedactor } from "../../src/core/redact.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/types.ts";

/** Issue 15, the audit log: what each change through src/control/ records, and what it never records. */
const actor = { name: "deploy", via: "api" as const };
const job = (name: string, extra: Record<string, unknown> = {}) => ({ name, every: "1m", url: "{{BASE}}/x", ...extra });

describe("masking", () => {
  test("values under secret-like keys are masked unless they only name templates; configured secret values anywhere", () => {
    const redact = createRedactor(["hunter2-long-secret"]);
    const doc = {
      headers: { Authorization: "Bearer abc123", "X-Api-Key": "{{API_KEY}}", "x-token": "Bearer {{TOKEN}}", cookie: "{{A}}; b=1", accept: "json" },
      body: { password: 1234, nested: [{ client_secret: "raw" }], text: "uses hunter2-long-secret inline" },
      created_at: new Date(0),
    };
    expect(maskDocument(doc, redact) as unknown).toEqual({
      headers: { Authorization: "***", "X-Api-Key": "{{API_KEY}}", "x-token": "Bearer {{TOKEN}}", cookie: "{{A}}; b=1", accept: "json" },
      body: { password: "***", nested: [{ client_secret: "***" }], text: "uses *** inline" },
      created_at: new Date(0),
    });
    expect(maskDocument({ headers: { authorization: "Bearer x{{T}}" } })).toEqual({ headers: { authorization: "***" } });
  });
});

describe("changes through src/control/ are recorded", () => {
  test("apply (create, update, prune), enable, disable, delete: actor, action, before and after without bookkeeping", async () => {
    const store = openSqliteStore(":memory:");
    await applyJobs(store, [{ name: "a", doc: job("a") }, { name: "b", doc: job("b") }], { prune: false, now: 1000, actor });
    await applyJobs(store, [{ name: "a", doc: job("a", { every: "5m" }) }], { prune: true, now: 2000, actor });
    await applyJobs(store, [{ name: "a", doc: job("a", { every: "5m" }) }], { prune: false, now: 2500, actor }); // unchanged: nothing
    await setEnabled(store, "a", false, 3000, { name: "ops@host", via: "cli" });
    await setEnabled(store, "a", false, 3500, actor); // no change: nothing
    await deleteJobByName(store, "a", 4000, { name: "page-user", via: "page" });
    const records = (await store.listAudit({ limit: 20 })).reverse();
    expect(records.map((r) => [r.action, r.job, r.actor, r.via, r.at.getTime()])).toEqual([
      ["create", "a", "deploy", "api", 1000],
      ["create", "b", "deploy", "api", 1000],
      ["update", "a", "deploy", "api", 2000],
      ["delete", "b", "deploy", "api", 2000],
      ["disable", "a", "ops@host", "cli", 3000],
      ["delete", "a", "page-user", "page", 4000],
    ]);
    expect(records[2]!.before).toEqual(job("a"));
    expect(records[2]!.after).toEqual(job("a", { every: "5m" }));
    expect(records[3]!.after).toBeNull();
    expect(records[4]!.before).not.toHaveProperty("updated_at");
    expect(records[4]!.after).toEqual(job("a", { every: "5m", enabled: false }));
    expect(records[5]!.before).toEqual(job("a", { every: "5m", enabled: false }));
    await store.close();
  });

  test("a store that takes the change but refuses its record says so: the change stands", async () => {
    const store = openSqliteStore(":memory:");
    const refusing = new Proxy(store, {
      get: (target, key, receiver) => (key === "insertAudit" ? async () => { throw new Error("disk full"); } : Reflect.get(target, key, receiver)),
    }) as Store;
    await applyJobs(store, [{ name: "a", doc: job("a") }], { prune: false, now: 1000, actor });
    const error = (await setEnabled(refusing, "a", false, 2000, actor).catch((e) => e)) as Error & { code: string };
    expect(error.code).toBe("E_AUDIT");
    expect(error.message).toBe('disable "a" was done, but its audit record could not be written (disk full)');
    expect((await store.findJobByName("a"))?.enabled).toBe(false);
    await expect(recordAudit(refusing, actor, [], 0)).resolves.toBeUndefined();
    await store.close();
  });
});
