import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import { makeHome, runCli, type TestHome } from "../support/cli.ts";

/**
 * Bad job documents as someone with write access to the store could leave them, met through the
 * CLI (README, "Security"): jobs list and status still answer, list the good job, report the bad
 * ones, and no control character from a stored name reaches the terminal.
 */

let home: TestHome;
const EVIL = "evil\u001b[2J\u001b]0;pwned\u0007\nforged line";

beforeAll(async () => {
  home = makeHome({ tz: "UTC" }, "fleetcron-baddocs");
  const path = join(home.home, "fleetcron.db");
  const store = openSqliteStore(path);
  await store.createJob({ name: "ok", every: "1m", url: "http://127.0.0.1:9/ok" });
  await store.createJob({ name: "far", every: "104000000d", url: "http://127.0.0.1:9/far" });
  await store.createJob({ name: EVIL, every: "1m", url: "http://127.0.0.1:9/evil" });
  await store.close();
  let body: unknown = 1;
  for (let i = 0; i < 10_000; i++) body = { a: body };
  const db = new Database(path);
  db.query("INSERT INTO jobs (id, name, doc) VALUES (?, ?, ?)").run("deep", "deep", JSON.stringify({ name: "deep", every: "1m", url: "http://127.0.0.1:9/", body }));
  db.close();
});
afterAll(() => home.cleanup());

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe("the CLI with bad documents in the store", () => {
  for (const args of [["jobs", "list"], ["jobs", "list", "--json"], ["status"], ["status", "--json"]]) {
    test(`${args.join(" ")}: answers, lists the good job, no control character reaches the terminal`, async () => {
      const result = await runCli(home, args);
      expect([result.exitCode, result.stderr]).toEqual([0, expect.any(String)]);
      expect(result.stdout).toContain("ok");
      expect(CONTROL.test(result.stdout)).toBe(false);
      expect(CONTROL.test(result.stderr)).toBe(false);
      expect(result.stdout).not.toContain("\nforged line");
    }, 20_000);
  }

  test("jobs list --json reports each bad document as invalid, under an escaped name", async () => {
    const result = await runCli(home, ["jobs", "list", "--json"]);
    const listed = JSON.parse(result.stdout) as { name: string; valid: boolean; problems: { message: string }[] }[] | { jobs: { name: string; valid: boolean }[] };
    const jobs = Array.isArray(listed) ? listed : listed.jobs;
    const byName = new Map(jobs.map((j) => [j.name, j]));
    expect(byName.get("ok")?.valid).toBe(true);
    expect(byName.get("far")?.valid).toBe(false);
    expect(byName.get("deep")?.valid).toBe(false);
    expect(byName.get("evil\\u001b[2J\\u001b]0;pwned\\u0007\\u000aforged line")?.valid).toBe(false);
    expect(jobs).toHaveLength(4);
  }, 20_000);
});
