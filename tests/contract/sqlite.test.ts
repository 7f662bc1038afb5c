import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "bun:test";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import { storeContract } from "./store.contract.ts";

const dir = mkdtempSync(join(tmpdir(), "fleetcron-sqlite-"));
storeContract("sqlite", async () => openSqliteStore(join(dir, "contract.db")), async () => rmSync(dir, { recursive: true, force: true }));

test("sqlite: two connections to one file see each other's claims", async () => {
  const shared = mkdtempSync(join(tmpdir(), "fleetcron-sqlite-shared-"));
  const a = openSqliteStore(join(shared, "f.db"));
  const b = openSqliteStore(join(shared, "f.db"));
  const run = {
    _id: "j@t", run_id: "j@t", job_id: "j", job_name: "J", scheduled_for: new Date(0), attempt: 1,
    trigger: "schedule" as const, status: "running" as const, claimed_at: new Date(0),
  };
  expect(await a.insertRun(run)).toBe(true);
  expect(await b.insertRun(run)).toBe(false);
  await a.close();
  await b.close();
  rmSync(shared, { recursive: true, force: true });
});

test("sqlite: batches larger than one statement holds keep an outcome per record across chunk edges (claims and finals)", async () => {
  const store = openSqliteStore(":memory:");
  const run = (id: string, machine: string) => ({
    _id: id, run_id: id, job_id: "j", job_name: "J", scheduled_for: new Date(0), attempt: 1,
    trigger: "schedule" as const, status: "running" as const, claimed_at: new Date(0), machine_id: machine,
  });
  const ids = Array.from({ length: 1203 }, (_, i) => `big-${String(i).padStart(4, "0")}@x`);
  const taken = new Set([0, 499, 500, 1202]);
  for (const i of taken) expect(await store.insertRun(run(ids[i]!, "other"))).toBe(true);
  const outcomes = await store.insertRuns(ids.map((id) => run(id, "m-big")));
  expect(ids.filter((_, i) => (outcomes[i] === "won") === taken.has(i))).toEqual([]);
  // Every other attempt is finished, "other"'s included: all still running, so all of them apply.
  await store.finishRuns(ids.filter((_, i) => i % 2 === 0).map((id) => ({ id, patch: { status: "success" as const, duration_ms: 1 } })));
  const byId = new Map((await store.getRuns(ids)).map((r) => [r._id, r]));
  expect(byId.size).toBe(1203);
  expect(ids.filter((id, i) => (byId.get(id)?.status === "success") !== (i % 2 === 0))).toEqual([]);
  expect([byId.get(ids[500]!)?.machine_id, byId.get(ids[501]!)?.machine_id, byId.get(ids[1201]!)?.status]).toEqual(["other", "m-big", "running"]);
  // A second final for an attempt in the same batch finds it finished: the first one stands.
  await store.finishRuns([{ id: ids[1]!, patch: { status: "error", error: "first" } }, { id: ids[1]!, patch: { status: "success" } }]);
  expect((await store.getRun(ids[1]!))?.error).toBe("first");
  await store.close();
});
