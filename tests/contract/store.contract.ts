import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AuditRecord, CommandRecord, MachineRecord, RunRecord, Store } from "../../src/store/types.ts";

/**
 * The store contract: every backend runs this same suite (SQLite always; MongoDB-wire against
 * FerretDB or MONGODB_URI). `open` must return an empty store.
 */
export function storeContract(name: string, open: () => Promise<Store>, cleanup?: () => Promise<void>) {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    const t0 = Date.UTC(2026, 0, 5, 9, 0, 0);
    const at = (secondsAfter: number) => new Date(t0 + secondsAfter * 1000);

    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store.close();
      await cleanup?.();
    });

    const run = (id: string, patch: Partial<RunRecord> = {}): RunRecord => ({
      _id: id,
      run_id: id.split("#")[0]!,
      job_id: "job-a",
      job_name: "A",
      scheduled_for: at(0),
      attempt: 1,
      trigger: "schedule",
      status: "running",
      machine_id: "m1",
      claimed_at: at(0),
      ...patch,
    });

    test("jobs: create, find by id and name, replace, delete", async () => {
      const id = await store.createJob({ name: "Daily Report", enabled: true, hour: 9, minute: 30, url: "http://x/" });
      expect(id).toMatch(/^[0-9a-f]{24}$/);
      expect((await store.getJob(id))?.name).toBe("Daily Report");
      expect((await store.findJobByName("Daily Report"))?._id).toBe(id);
      await store.replaceJob(id, { name: "Daily Report", enabled: false, hour: 10, minute: 0, url: "http://x/" });
      const replaced = await store.getJob(id);
      expect(replaced?.enabled).toBe(false);
      expect(replaced?.hour).toBe(10);
      expect((await store.listJobs()).map((j) => j._id)).toEqual([id]);
      expect(await store.deleteJob(id)).toBe(true);
      expect(await store.deleteJob(id)).toBe(false);
      expect(await store.getJob(id)).toBeNull();
      expect(await store.findJobByName("Daily Report")).toBeNull();
    });

    test("jobs: a deleted job can be put back under its id", async () => {
      const id = await store.createJob({ name: "restored", every: "1m" });
      expect(await store.deleteJob(id)).toBe(true);
      await store.createJobWithId(id, { name: "restored", every: "5m" });
      expect((await store.getJob(id))?.every).toBe("5m");
      expect((await store.findJobByName("restored"))?._id).toBe(id);
      expect(await store.deleteJob(id)).toBe(true);
    });

    test("jobs: nested values and nulls survive the round trip", async () => {
      const doc = { name: "Nested", hour: null, minute: 0, actions: [{ type: "http", name: "s", url: "u", when: { hour_in: [0, 12] } }], body: { a: [1, { b: null }] } };
      const id = await store.createJob(doc);
      const back = await store.getJob(id);
      expect(back).toEqual({ ...doc, _id: id });
      await store.deleteJob(id);
    });

    test("jobs revision changes on every bump", async () => {
      const before = await store.getJobsRevision();
      await store.bumpJobsRevision(at(1));
      const first = await store.getJobsRevision();
      await store.bumpJobsRevision(at(1));
      const second = await store.getJobsRevision();
      expect(first).not.toBe(before);
      expect(second).not.toBe(first);
    });

    test("revisions: one read gives both; a job bump changes only jobs, a command insert only commands", async () => {
      const start = await store.getRevisions();
      await store.bumpJobsRevision(at(2));
      const afterBump = await store.getRevisions();
      expect(afterBump.jobs).not.toBe(start.jobs);
      expect(afterBump.jobs).toBe(await store.getJobsRevision());
      expect(afterBump.commands).toBe(start.commands);
      await store.insertCommand({ _id: "c-revision", type: "reload", target: null, created_at: at(2) });
      const afterCommand = await store.getRevisions();
      expect(afterCommand.commands).not.toBe(afterBump.commands);
      expect(afterCommand.jobs).toBe(afterBump.jobs);
      await store.insertCommand({ _id: "c-revision-2", type: "reload", target: null, created_at: at(2) });
      expect((await store.getRevisions()).commands).not.toBe(afterCommand.commands);
      await store.pruneCommands(at(3));
    });

    test("runs: insert is the claim — a second insert of the same _id loses", async () => {
      expect(await store.insertRun(run("job-a@2026-01-05T09:00:00.000Z"))).toBe(true);
      expect(await store.insertRun(run("job-a@2026-01-05T09:00:00.000Z", { machine_id: "m2" }))).toBe(false);
      const stored = await store.getRun("job-a@2026-01-05T09:00:00.000Z");
      expect(stored?.machine_id).toBe("m1");
      expect(stored?.scheduled_for).toBeInstanceOf(Date);
      expect(stored?.scheduled_for.getTime()).toBe(t0);
    });

    test("runs: concurrent claims of one occurrence have exactly one winner", async () => {
      const id = "job-a@2026-01-05T09:01:00.000Z";
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.insertRun(run(id, { machine_id: `m${i}`, scheduled_for: at(60) }))));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    test("runs: update merges a patch and keeps indexed fields queryable", async () => {
      const id = "job-a@2026-01-05T09:02:00.000Z";
      await store.insertRun(run(id, { scheduled_for: at(120) }));
      await store.updateRun(id, {
        status: "error",
        finished_at: at(121),
        steps: [{ name: "s1", status: "error", attempts: 2, duration_ms: 5, http_status: 500, error: "HTTP 500" }],
      });
      const updated = await store.getRun(id);
      expect(updated?.status).toBe("error");
      expect(updated?.machine_id).toBe("m1");
      expect(updated?.finished_at?.getTime()).toBe(at(121).getTime());
      expect(updated?.steps?.[0]?.http_status).toBe(500);
      const errors = await store.listRuns({ status: "error", limit: 10 });
      expect(errors.map((r) => r._id)).toContain(id);
    });

    test("runs: listed newest first, filtered by job and status, limited", async () => {
      for (let i = 0; i < 5; i++) {
        await store.insertRun(run(`job-b@${at(600 + i).toISOString()}`, { job_id: "job-b", job_name: "B", scheduled_for: at(600 + i), status: i % 2 ? "success" : "error" }));
      }
      const list = await store.listRuns({ job_id: "job-b", limit: 3 });
      expect(list.map((r) => r.scheduled_for.getTime())).toEqual([at(604), at(603), at(602)].map((d) => d.getTime()));
      const byName = await store.listRuns({ job_name: "B", status: "success", limit: 10 });
      expect(byName).toHaveLength(2);
      expect(byName.every((r) => r.status === "success")).toBe(true);
      const got = await store.getRuns([`job-b@${at(600).toISOString()}`, "nope"]);
      expect(got.map((r) => r._id)).toEqual([`job-b@${at(600).toISOString()}`]);
    });

    test("runs: latest per job counts the highest attempt", async () => {
      const base = `job-c@${at(900).toISOString()}`;
      await store.insertRun(run(base, { job_id: "job-c", job_name: "C", scheduled_for: at(900), status: "lost" }));
      await store.insertRun(run(`${base}#2`, { job_id: "job-c", job_name: "C", scheduled_for: at(900), attempt: 2, status: "success" }));
      await store.insertRun(run(`job-c@${at(300).toISOString()}`, { job_id: "job-c", job_name: "C", scheduled_for: at(300), status: "error" }));
      const latest = await store.latestRunsByJob();
      expect(latest.get("job-c")?._id).toBe(`${base}#2`);
      expect(latest.get("job-b")?.scheduled_for.getTime()).toBe(at(604).getTime());
    });

    test("runs: a job's occurrence records in a range, every attempt, oldest first, bounds inclusive, limited", async () => {
      const key = (s: number) => `job-r@${at(s).toISOString()}`;
      const r = (id: string, s: number, patch: Partial<RunRecord> = {}) => run(id, { job_id: "job-r", job_name: "R", scheduled_for: at(s), ...patch });
      await store.insertRun(r(key(2000), 2000, { status: "missed" }));
      await store.insertRun(r(`${key(2000)}#2`, 2000, { attempt: 2, trigger: "backfill", status: "success" }));
      await store.insertRun(r(key(2010), 2010, { status: "success" }));
      await store.insertRun(r(key(2020), 2020, { status: "error" }));
      await store.insertRun(r(key(1990), 1990));
      await store.insertRun(run(`job-other@${at(2005).toISOString()}`, { job_id: "job-other", scheduled_for: at(2005) }));
      const got = await store.listOccurrenceRuns("job-r", at(2000), at(2020), 100);
      expect(got.map((x) => x._id)).toEqual([key(2000), `${key(2000)}#2`, key(2010), key(2020)]);
      expect(got[1]!.scheduled_for).toBeInstanceOf(Date);
      expect(got[1]!.trigger).toBe("backfill");
      expect((await store.listOccurrenceRuns("job-r", at(2000), at(2000), 100)).map((x) => x.attempt)).toEqual([1, 2]);
      expect((await store.listOccurrenceRuns("job-r", at(2000), at(2020), 2)).map((x) => x._id)).toEqual([key(2000), `${key(2000)}#2`]);
      expect(await store.listOccurrenceRuns("job-r", at(2001), at(2009), 100)).toEqual([]);
    });

    test("runs: prune deletes only older history", async () => {
      await store.insertRun(run(`job-old@x`, { job_id: "job-old", scheduled_for: new Date(t0 - 86_400_000 * 40) }));
      const pruned = await store.pruneRuns(new Date(t0 - 86_400_000 * 30));
      expect(pruned).toBe(1);
      expect(await store.getRun("job-old@x")).toBeNull();
      expect(await store.getRun("job-a@2026-01-05T09:00:00.000Z")).not.toBeNull();
    });

    test("runs: a batch of claims is one call with an outcome per record, a duplicate is lost", async () => {
      const ids = [0, 1, 2, 3].map((i) => `batch-${i}@2026-01-05T10:00:00.000Z`);
      expect(await store.insertRun(run(ids[1]!, { machine_id: "other" }))).toBe(true);
      const outcomes = await store.insertRuns(ids.map((id) => run(id, { machine_id: "m-batch", nonce: "n1" })));
      expect(outcomes).toEqual(["won", "lost", "won", "won"]);
      expect((await store.getRun(ids[1]!))?.machine_id).toBe("other");
      expect((await store.getRun(ids[2]!))?.nonce).toBe("n1");
      // Within one batch, the second copy of an id loses to the first.
      expect(await store.insertRuns([run("batch-dup@x", { machine_id: "a" }), run("batch-dup@x", { machine_id: "b" })])).toEqual(["won", "lost"]);
      expect((await store.getRun("batch-dup@x"))?.machine_id).toBe("a");
      expect(await store.insertRuns([])).toEqual([]);
    });

    test("runs: final writes in one batch apply only to attempts still running", async () => {
      const [a, b, c] = ["fin-a@x", "fin-b@x", "fin-c@x"];
      await store.insertRuns([run(a!), run(b!), run(c!, { status: "lost", reason: "taken over" })]);
      await store.finishRuns([
        { id: a!, patch: { status: "success", finished_at: at(3), duration_ms: 3 } },
        { id: b!, patch: { status: "error", error: "HTTP 500" } },
        { id: c!, patch: { status: "success" } },
        { id: "fin-missing@x", patch: { status: "success" } },
      ]);
      expect((await store.getRun(a!))?.status).toBe("success");
      expect((await store.getRun(a!))?.finished_at?.getTime()).toBe(at(3).getTime());
      expect((await store.getRun(b!))?.error).toBe("HTTP 500");
      // A late final write never turns a lost attempt back into a success (where the store can
      // guard it; on FerretDB v1 the agent's fence does, docs/protocol.md).
      expect((await store.getRun(c!))?.status).toBe(store.finalWritesGuarded ? "lost" : "success");
      expect(await store.getRun("fin-missing@x")).toBeNull();
    });

    test("runs: running attempts are listed, by machine", async () => {
      await store.insertRuns([run("live-1@x", { machine_id: "m-run" }), run("live-2@x", { machine_id: "m-run", status: "success" }), run("live-3@x", { machine_id: "m-else" })]);
      expect((await store.listRunning("m-run")).map((r) => r._id)).toEqual(["live-1@x"]);
      const all = (await store.listRunning()).map((r) => r._id);
      expect(all).toContain("live-1@x");
      expect(all).toContain("live-3@x");
      expect(all).not.toContain("live-2@x");
    });

    test("machines: put, get, list", async () => {
      const machine: MachineRecord = {
        _id: "m1", hostname: "h", pid: 1, serial: 1, status: "running", version: "0", started_at: at(0), last_seen: at(5), clock_offset_ms: 3,
      };
      await store.putMachine(machine);
      await store.putMachine({ ...machine, last_seen: at(10) });
      expect((await store.getMachine("m1"))?.last_seen.getTime()).toBe(at(10).getTime());
      expect((await store.listMachines()).map((m) => m._id)).toEqual(["m1"]);
    });

    test("machines: a heartbeat upserts the record and stamps last_seen by the store's clock", async () => {
      const { last_seen: _ignored, ...fields } = {
        _id: "m-beat", hostname: "h", pid: 2, serial: null, status: "running" as const, version: "0", started_at: at(0), last_seen: at(0), clock_offset_ms: null,
        protocol: 2, session: "s-1", seq: 1, ready: true, tags: { region: "eu" }, running: [{ id: "j@x", job_id: "j", scheduled_for: at(1) }],
      };
      const now = new Date();
      await store.beat(fields, now);
      const first = await store.getMachine("m-beat");
      expect(first?.session).toBe("s-1");
      expect(first?.tags).toEqual({ region: "eu" });
      expect(first?.running?.[0]?.scheduled_for.getTime()).toBe(at(1).getTime());
      // MongoDB stamps its own time ($currentDate); SQLite is one host, so the caller's `now`.
      expect(Math.abs(first!.last_seen.getTime() - now.getTime())).toBeLessThan(5_000);
      await store.beat({ ...fields, seq: 2, running: [] }, new Date(now.getTime() + 1000));
      const second = await store.getMachine("m-beat");
      expect(second?.seq).toBe(2);
      expect(second?.running).toEqual([]);
      expect(second!.last_seen.getTime()).toBeGreaterThanOrEqual(first!.last_seen.getTime());
    });

    test("machines: a heartbeat replaces the record, so a field the next one lacks is gone (a drain's claims_stopped_at after a restart)", async () => {
      const { last_seen: _ignored, ...fields } = {
        _id: "m-replace", hostname: "h", pid: 2, serial: null, status: "draining" as const, version: "0", started_at: at(0), last_seen: at(0), clock_offset_ms: null,
        protocol: 2, session: "s-1", seq: 1, ready: false, running: [], claims_stopped_at: at(2), inherited: ["s-0"],
      };
      await store.beat(fields, new Date());
      expect((await store.getMachine("m-replace"))?.claims_stopped_at?.getTime()).toBe(at(2).getTime());
      const { claims_stopped_at: _stopped, inherited: _inherited, ...restarted } = fields;
      await store.beat({ ...restarted, status: "running", session: "s-2", seq: 1, ready: true }, new Date());
      const after = await store.getMachine("m-replace");
      expect(after?.session).toBe("s-2");
      expect(after?.claims_stopped_at ?? null).toBeNull();
      expect(after?.inherited ?? null).toBeNull();
      expect(Object.keys(after!)).not.toContain("claims_stopped_at");
    });

    test("serials: unique claim, touch, conditional delete", async () => {
      expect(await store.insertSerial({ _id: 1, machine_id: "m1", claimed_at: at(0), last_seen: at(0) })).toBe(true);
      expect(await store.insertSerial({ _id: 1, machine_id: "m2", claimed_at: at(0), last_seen: at(0) })).toBe(false);
      expect(await store.insertSerial({ _id: 2, machine_id: "m2", claimed_at: at(0), last_seen: at(0) })).toBe(true);
      await store.touchSerial(1, "m1", at(7));
      await store.touchSerial(2, "m1", at(9)); // not its holder: no effect
      const serials = await store.listSerials();
      expect(serials.map((s) => [s._id, s.machine_id, s.last_seen.getTime()])).toEqual([
        [1, "m1", at(7).getTime()],
        [2, "m2", at(0).getTime()],
      ]);
      // A stale read must not free a serial that was refreshed since.
      expect(await store.deleteSerial(1, "m1", at(0))).toBe(false);
      expect(await store.deleteSerial(1, "m2")).toBe(false);
      expect(await store.deleteSerial(1, "m1", at(7))).toBe(true);
      expect(await store.deleteSerial(2, "m2")).toBe(true);
      expect(await store.listSerials()).toHaveLength(0);
    });

    test("serials: concurrent claims of one serial have exactly one winner", async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.insertSerial({ _id: 5, machine_id: `m${i}`, claimed_at: at(0), last_seen: at(0) })),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const holder = (await store.listSerials())[0]!;
      expect(await store.deleteSerial(5, holder.machine_id)).toBe(true);
    });

    test("commands: listed since a time, acked once per machine, pruned", async () => {
      const old: CommandRecord = { _id: "c-old", type: "reload", target: null, created_at: at(-100) };
      const fresh: CommandRecord = { _id: "c-new", type: "reload-config", target: "m2", created_at: at(100) };
      await store.insertCommand(old);
      await store.insertCommand(fresh);
      expect((await store.listCommands(at(0))).map((c) => c._id)).toEqual(["c-new"]);
      expect((await store.listCommands(at(-200))).map((c) => c._id)).toEqual(["c-old", "c-new"]);
      expect(await store.insertAck({ _id: "c-new:m2", command_id: "c-new", machine_id: "m2", acked_at: at(101) })).toBe(true);
      expect(await store.insertAck({ _id: "c-new:m2", command_id: "c-new", machine_id: "m2", acked_at: at(102) })).toBe(false);
      expect((await store.listAcks("c-new")).map((a) => a.machine_id)).toEqual(["m2"]);
      expect(await store.pruneCommands(at(0))).toBe(1);
      expect((await store.listCommands(at(-200))).map((c) => c._id)).toEqual(["c-new"]);
    });

    test("audit: newest first, by job, limited, pruned by age; documents round-trip", async () => {
      const entry = (id: string, seconds: number, job: string | null, extra: Partial<AuditRecord> = {}): AuditRecord => ({
        _id: id, at: at(seconds), actor: "ops@host", via: "cli", action: "update", job, ...extra,
      });
      await store.insertAudit(entry("a-1", 10, "Report", { before: null, after: { name: "Report", every: "1m", headers: { x: [1, { y: null }] } } }));
      await store.insertAudit(entry("a-2", 20, "Other", { via: "api", actor: "deploy" }));
      await store.insertAudit(entry("a-3", 30, "Report", { action: "trigger", run_id: "r1" }));
      await store.insertAudit(entry("a-old", -86_400 * 40, null, { action: "apply" }));
      expect((await store.listAudit({ limit: 10 })).map((r) => r._id)).toEqual(["a-3", "a-2", "a-1", "a-old"]);
      expect((await store.listAudit({ limit: 2 })).map((r) => r._id)).toEqual(["a-3", "a-2"]);
      const report = await store.listAudit({ job: "Report", limit: 10 });
      expect(report.map((r) => r._id)).toEqual(["a-3", "a-1"]);
      expect(report[1]!.at).toBeInstanceOf(Date);
      expect(report[1]!.at.getTime()).toBe(at(10).getTime());
      expect(report[1]!.before).toBeNull();
      expect(report[1]!.after).toEqual({ name: "Report", every: "1m", headers: { x: [1, { y: null }] } });
      expect(report[0]!.run_id).toBe("r1");
      expect(await store.pruneAudit(at(0))).toBe(1);
      expect((await store.listAudit({ limit: 10 })).map((r) => r._id)).toEqual(["a-3", "a-2", "a-1"]);
    });

    test("server time is a date near this host's clock", async () => {
      const server = await store.serverTime();
      expect(Math.abs(server.getTime() - Date.now())).toBeLessThan(60_000);
    });
  });
}
