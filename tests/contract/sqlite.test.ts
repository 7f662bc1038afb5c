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
