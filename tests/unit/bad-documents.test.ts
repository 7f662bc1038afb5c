import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadJobSet } from "../../src/agent/job-set.ts";
import { listJobSummaries } from "../../src/control/jobs.ts";
import { parseJobDocument } from "../../src/jobs/schema.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";

/**
 * One document cannot stop the fleet (README, "Security"): whatever a single job document holds,
 * the others are read, listed and scheduled, and it is reported as invalid under its own name.
 */

const root = mkdtempSync(join(tmpdir(), "fleetcron-baddocs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const ok = { name: "ok", every: "1m", url: "http://127.0.0.1:9/ok" };

function nested(depth: number): unknown {
  let body: unknown = 1;
  for (let i = 0; i < depth; i++) body = { a: body };
  return body;
}

/** Rows as someone with write access to the database file could leave them (no validation, no encoder). */
function plantRows(path: string, rows: { id: string; name: string; doc: string }[]): void {
  const db = new Database(path);
  for (const row of rows) db.query("INSERT INTO jobs (id, name, doc) VALUES (?, ?, ?)").run(row.id, row.name, row.doc);
  db.close();
}

describe("reading jobs survives any single document", () => {
  test("a body nested 10,000 deep (it overflowed the stack in listJobs): the other jobs are read and it is reported", async () => {
    const path = join(root, "deep-10k.db");
    const store = openSqliteStore(path);
    await store.createJob(ok);
    plantRows(path, [{ id: "deep-10k", name: "deep 10k", doc: JSON.stringify({ name: "deep 10k", every: "1m", url: "http://127.0.0.1:9/", body: nested(10_000) }) }]);
    try {
      const set = await loadJobSet(store, []);
      expect([...set.jobs.values()].map((j) => j.name)).toEqual(["ok"]);
      expect(set.invalid.map((i) => [i.id, i.problems[0]!.message])).toEqual([["deep-10k", "is nested more than 20 levels deep; flatten it"]]);
    } finally {
      await store.close();
    }
  });

  test("a body nested 10,000 deep, one 300,000 deep and a corrupt row: the good job still runs, each bad one is reported", async () => {
    const path = join(root, "deep.db");
    const store = openSqliteStore(path);
    await store.createJob(ok);
    plantRows(path, [
      { id: "deep-10k", name: "deep 10k", doc: JSON.stringify({ name: "deep 10k", every: "1m", url: "http://127.0.0.1:9/", body: nested(10_000) }) },
      { id: "deep-300k", name: "deep 300k", doc: `{"name":"deep 300k","every":"1m","url":"http://127.0.0.1:9/","body":${'{"a":'.repeat(300_000)}1${"}".repeat(300_000)}}` },
      { id: "corrupt", name: "corrupt", doc: '{"name": "corrupt", "every": ' },
    ]);
    try {
      const docs = await store.listJobs();
      expect(docs.map((d) => d._id).sort()).toEqual(["corrupt", "deep-10k", "deep-300k", expect.any(String)].sort());
      const set = await loadJobSet(store, []);
      expect([...set.jobs.values()].map((j) => j.name)).toEqual(["ok"]);
      const problems = Object.fromEntries(set.invalid.map((i) => [i.id, i.problems.map((p) => p.message).join("; ")]));
      expect(problems["deep-10k"]).toContain("nested more than 20 levels deep");
      expect(problems["deep-300k"]).toContain("nested more than 20 levels deep");
      expect(problems["corrupt"]).toContain("the stored document cannot be read");
      const summaries = await listJobSummaries(store, [], "UTC", T0);
      expect(summaries.filter((s) => s.valid).map((s) => s.name)).toEqual(["ok"]);
      expect(summaries.filter((s) => !s.valid).map((s) => s.name).sort()).toEqual(["corrupt", "deep 10k", "deep 300k"]);
      expect((await store.getJob("deep-300k"))?.name).toBe("deep 300k");
    } finally {
      await store.close();
    }
  });

  test("a document that makes checking itself throw is that document's problem, not the caller's", () => {
    const hostile = { name: "hostile", every: "1m", url: "http://127.0.0.1:9/" } as Record<string, unknown>;
    Object.defineProperty(hostile, "cron", { enumerable: true, get: () => { throw new Error("boom"); } });
    const parsed = parseJobDocument(hostile, { secretKeys: [] });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems[0]!.message).toContain("could not be checked (boom)");
  });
});

describe("every duration is bounded, so no computed instant leaves the date range", () => {
  const problemsOf = (fields: Record<string, unknown>) => {
    const parsed = parseJobDocument({ name: "j", url: "http://127.0.0.1:9/", ...fields }, { secretKeys: [] });
    return parsed.ok ? [] : parsed.problems.map((p) => `${p.path}: ${p.message}`);
  };

  test('"every": "104000000d" and others past a year are refused; a year and a day is the longest', () => {
    for (const every of ["104000000d", "367d", "366d1s", "9000000h"]) expect(problemsOf({ every })).toEqual(["every: must be at most 366d (for rarer jobs use cron) (got " + JSON.stringify(every) + ")"]);
    expect(problemsOf({ every: "366d" })).toEqual([]);
  });

  test("alert_after_sec past a year is refused", () => {
    expect(problemsOf({ every: "1h", alert_after_sec: 1e15 })[0]).toContain("alert_after_sec: must be a number of seconds greater than 0, at most 31622400 (366 days)");
    expect(problemsOf({ every: "1h", alert_after_sec: 31_622_400 })).toEqual([]);
  });

  test("a stored job with a huge every no longer breaks the listing: it is listed invalid and the others keep their next fire", async () => {
    const store = openSqliteStore(":memory:");
    try {
      await store.createJob(ok);
      await store.createJob({ name: "far", every: "104000000d", url: "http://127.0.0.1:9/" });
      const summaries = await listJobSummaries(store, [], "UTC", T0);
      expect(summaries.map((s) => [s.name, s.valid, s.next_fire])).toEqual([
        ["far", false, null],
        ["ok", true, "2026-01-05T09:01:00.000Z"],
      ]);
    } finally {
      await store.close();
    }
  });
});

describe("names that would rewrite a terminal or forge a log line", () => {
  test("job and step names with control characters are refused", () => {
    for (const name of ["two\nlines", "fake\r2026-01-01 info ok", "red\u001b[31m", "tab\there", "rtl\u202eevil", "nul\u0000", "c1\u009b2J"]) {
      const job = parseJobDocument({ name, every: "1m", url: "http://127.0.0.1:9/" }, { secretKeys: [] });
      expect([name, job.ok]).toEqual([name, false]);
      if (!job.ok) expect(job.problems.map((p) => p.message)).toContainEqual(expect.stringContaining("must not contain control characters (newline, tab, ESC, bidi overrides, …)"));
      const step = parseJobDocument({ name: "ok", every: "1m", actions: [{ name, url: "http://127.0.0.1:9/" }] }, { secretKeys: [] });
      expect(step.ok).toBe(false);
    }
  });

  test("the name a problem is reported under is escaped", () => {
    const parsed = parseJobDocument({ name: "evil\u001b[2J\nnext", every: "1m" }, { secretKeys: [] });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) for (const p of parsed.problems) expect(p.job).toBe("evil\\u001b[2J\\u000anext");
  });
});
