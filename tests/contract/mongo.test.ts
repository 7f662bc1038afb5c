import { afterAll, describe, expect, test } from "bun:test";
import { MongoClient, ObjectId } from "mongodb";
import { StoreError } from "../../src/core/errors.ts";
import { openMongoStore, POOL_CHECK_EVERY_MS, slowPoolCheck } from "../../src/store/mongo.ts";
import type { MachineRecord, RunRecord, Store } from "../../src/store/types.ts";
import { startMongo, type TestMongo } from "../support/ferretdb.ts";
import { storeContract } from "./store.contract.ts";
import { seedDailyReport, seedDataPipeline } from "../fixtures/seed-jobs.ts";

/**
 * The store contract and the seed's compatibility promises, on MONGODB_URI or a throwaway FerretDB
 * v1. In CI this suite must run: no server there is a failure, not a skip.
 */

let server: TestMongo | null = null;
try {
  server = await startMongo();
} catch (err) {
  const reason = err instanceof Error ? err.message : String(err);
  if (process.env.CI) throw new Error(`The MongoDB store suite must run in CI, but no server is available: ${reason}`);
  console.warn(`SKIPPING MongoDB store tests: ${reason}\n  Set MONGODB_URI, or run scripts/install-ferretdb.sh (needs Go).`);
}

if (!server) {
  test.skip("MongoDB store (no MONGODB_URI and no FerretDB)", () => {});
} else {
  const mongo = server;
  afterAll(() => mongo.stop());

  const open = (prefix: string, extra: { serverSelectionTimeoutMS?: number } = {}) =>
    openMongoStore({ uri: mongo.uri, dbName: mongo.dbName(prefix), ...extra });

  storeContract(`mongo (${mongo.kind})`, () => open("contract"));

  describe(`mongo store specifics (${mongo.kind})`, () => {
    const t0 = Date.UTC(2026, 0, 5, 9, 0, 0);
    const run = (id: string, patch: Partial<RunRecord> = {}): RunRecord => ({
      _id: id,
      run_id: id.split("#")[0]!,
      job_id: "job-a",
      job_name: "A",
      scheduled_for: new Date(t0),
      attempt: 1,
      trigger: "schedule",
      status: "running",
      machine_id: "m1",
      claimed_at: new Date(t0),
      ...patch,
    });

    test("the pool checks once a second, not every 100 ms: the option reaches each server's pool, and the store sets it", async () => {
      // Internals on purpose: the driver takes this option only this way, so an upgrade that stops
      // passing it on must fail here rather than quietly bring back ten wake-ups a second.
      type Pools = { topology?: { s: { servers: Map<string, { pool: { options: { minPoolSizeCheckFrequencyMS?: number } } }> } } };
      const client = new MongoClient(mongo.uri, { serverSelectionTimeoutMS: 5000 });
      slowPoolCheck(client);
      try {
        await client.db("admin").command({ ping: 1 });
        const servers = [...((client as unknown as Pools).topology?.s.servers.values() ?? [])];
        expect(servers.length).toBeGreaterThan(0);
        for (const server of servers) expect(server.pool.options.minPoolSizeCheckFrequencyMS).toBe(POOL_CHECK_EVERY_MS);
      } finally {
        await client.close();
      }

      const connect = MongoClient.prototype.connect;
      let seen: unknown = "not connected";
      MongoClient.prototype.connect = function (this: MongoClient) {
        seen = (this.options as { minPoolSizeCheckFrequencyMS?: number }).minPoolSizeCheckFrequencyMS;
        return connect.call(this);
      };
      try {
        const store = await open("pool-check");
        await store.close();
      } finally {
        MongoClient.prototype.connect = connect;
      }
      expect(seen).toBe(POOL_CHECK_EVERY_MS);
    });

    /** A store plus a raw driver handle on the same database, as an operator's shell would have. */
    async function withRaw<T>(prefix: string, fn: (store: Store, raw: ReturnType<MongoClient["db"]>) => Promise<T>): Promise<T> {
      const dbName = mongo.dbName(prefix);
      const store = await openMongoStore({ uri: mongo.uri, dbName });
      const client = new MongoClient(mongo.uri);
      try {
        return await fn(store, client.db(dbName));
      } finally {
        await store.close();
        await client.close();
      }
    }

    test("a job inserted the seed's way is listed, found by id and name, replaced and deleted by its hex id", async () => {
      await withRaw("seedjobs", async (store, raw) => {
        const daily = new ObjectId();
        await raw.collection("jobs").insertOne({ _id: daily, ...seedDailyReport() });
        await raw.collection("jobs").insertOne(seedDataPipeline());
        // A hand-made job with a plain string id must be reachable too.
        await raw.collection<{ _id: string; name: string }>("jobs").insertOne({ _id: "nightly", name: "Nightly" });

        const hex = daily.toHexString();
        const listed = await store.listJobs();
        expect(listed.map((j) => j.name)).toEqual(["Daily Report", "Data Pipeline", "Nightly"]);
        expect(listed.every((j) => typeof j._id === "string")).toBe(true);
        expect(listed[0]?._id).toBe(hex);
        expect(listed[1]?._id).toMatch(/^[0-9a-f]{24}$/);

        const found = await store.getJob(hex);
        expect(found).toMatchObject({ _id: hex, name: "Daily Report", hour: 9, minute: 30, retry: { retries: 3, delay_sec: 5 } });
        expect((await store.findJobByName("Data Pipeline"))?.hour).toBeNull();
        expect((await store.getJob("nightly"))?.name).toBe("Nightly");

        await store.replaceJob(hex, { name: "Daily Report", enabled: false, hour: 9, minute: 30, url: "{{BASE_URL}}/report" });
        // Still the seed's ObjectId document, not a new string-keyed twin.
        const rawDoc = await raw.collection("jobs").findOne({ _id: daily });
        expect(rawDoc?.enabled).toBe(false);
        expect(await raw.collection("jobs").countDocuments()).toBe(3);

        expect(await store.deleteJob(hex)).toBe(true);
        expect(await raw.collection("jobs").findOne({ _id: daily })).toBeNull();
        expect(await store.deleteJob("nightly")).toBe(true);
      });
    });

    test("createJob stores an ObjectId _id, as the seed's jobs have", async () => {
      await withRaw("createjob", async (store, raw) => {
        const id = await store.createJob({ name: "New", hour: 1, minute: 2 });
        const doc = await raw.collection("jobs").findOne({ _id: new ObjectId(id) });
        expect(doc?.name).toBe("New");
      });
    });

    test("the seed's monitoring queries return FleetCron's records", async () => {
      await withRaw("monitoring", async (store, raw) => {
        const now = Date.now();
        const machine = (id: string, lastSeen: number): MachineRecord => ({
          _id: id, hostname: id, pid: 1, serial: 1, status: "running", version: "test",
          started_at: new Date(now - 3_600_000), last_seen: new Date(lastSeen), clock_offset_ms: 0,
        });
        await store.putMachine(machine("alive", now - 5_000));
        await store.putMachine(machine("gone", now - 600_000));
        for (let i = 0; i < 12; i++) {
          await store.insertRun(run(`job-a@${new Date(t0 + i * 60_000).toISOString()}`, { scheduled_for: new Date(t0 + i * 60_000), status: i % 3 === 0 ? "error" : "success" }));
        }

        // db.machines.find({ last_seen: { $gte: new Date(Date.now() - 120000) } })
        const active = await raw.collection("machines").find({ last_seen: { $gte: new Date(Date.now() - 120000) } }).toArray();
        expect(active.map((m) => String(m._id))).toEqual(["alive"]);

        // db.job_runs.find().sort({ scheduled_for: -1 }).limit(10)
        const recent = await raw.collection("job_runs").find().sort({ scheduled_for: -1 }).limit(10).toArray();
        expect(recent).toHaveLength(10);
        expect(recent[0]?.scheduled_for).toBeInstanceOf(Date);
        expect(recent.map((r) => (r.scheduled_for as Date).getTime())).toEqual(Array.from({ length: 10 }, (_, i) => t0 + (11 - i) * 60_000));

        // db.job_runs.find({ status: "error" })
        const failed = await raw.collection("job_runs").find({ status: "error" }).toArray();
        expect(failed).toHaveLength(4);
        expect(failed.every((r) => r.job_id === "job-a")).toBe(true);
      });
    });

    test("10 parallel claims of one run from 10 clients: exactly one wins", async () => {
      const dbName = mongo.dbName("race");
      const stores = await Promise.all(Array.from({ length: 10 }, () => openMongoStore({ uri: mongo.uri, dbName })));
      try {
        for (let round = 0; round < 5; round++) {
          const id = `job-a@${new Date(t0 + round * 1000).toISOString()}`;
          const results = await Promise.all(stores.map((s, i) => s.insertRun(run(id, { machine_id: `m${i}` }))));
          expect(results.filter(Boolean)).toHaveLength(1);
          const winner = results.indexOf(true);
          expect((await stores[0]!.getRun(id))?.machine_id).toBe(`m${winner}`);
        }
        const serialResults = await Promise.all(stores.map((s, i) => s.insertSerial({ _id: 3, machine_id: `m${i}`, claimed_at: new Date(t0), last_seen: new Date(t0) })));
        expect(serialResults.filter(Boolean)).toHaveLength(1);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    test("indexes exist and none is a TTL index", async () => {
      await withRaw("indexes", async (_store, raw) => {
        const keys = (await raw.collection("job_runs").listIndexes().toArray()).map((i) => Object.keys(i.key).join(","));
        expect(keys).toContain("scheduled_for,_id");
        expect(keys).toContain("job_id,scheduled_for,_id");
        expect(keys).toContain("status,scheduled_for,_id");
        for (const name of ["job_runs", "jobs", "commands", "command_acks"]) {
          const indexes = await raw.collection(name).listIndexes().toArray();
          expect(indexes.some((i) => i.expireAfterSeconds !== undefined)).toBe(false);
        }
        // Opening again (another agent, a restart) leaves them as they are.
        const again = await openMongoStore({ uri: mongo.uri, dbName: raw.databaseName });
        await again.close();
      });
    });

    test("an unreachable server is a StoreError naming the store, with the password masked", async () => {
      const port = await closedPort();
      const uri = `mongodb://fleet:hunter2secret@127.0.0.1:${port}/`;
      const err = await openMongoStore({ uri, dbName: "x", serverSelectionTimeoutMS: 300 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      const message = (err as Error).message;
      expect(message).toContain("cannot reach the MongoDB store");
      expect(message).toContain(`mongodb://fleet:***@127.0.0.1:${port}/`);
      expect(message).not.toContain("hunter2secret");
    });

    // FerretDB v1 accepts any user and password with PLAIN, so a real password can be connected
    // with; an outside server would need real credentials, which this suite does not have.
    test.skipIf(mongo.kind !== "ferretdb")("location is the URI, password masked (a connected store with a real password)", async () => {
      const password = "pw-Qx7%2Fsecret-41"; // percent-encoded "/" too: a redactor must mask it as a whole
      const { host } = new URL(mongo.uri);
      const uri = `mongodb://fleet:${password}@${host}/?authMechanism=PLAIN`;
      const store = await openMongoStore({ uri, dbName: mongo.dbName("location"), serverSelectionTimeoutMS: 10_000 });
      try {
        // It really connected with those credentials: a write and a read back.
        expect(await store.insertRun(run("job-a@location"))).toBe(true);
        expect((await store.getRun("job-a@location"))?.machine_id).toBe("m1");
        expect(store.kind).toBe("mongo");
        // Written out by hand, not computed by the product's redactor.
        expect(store.location).toBe(`mongodb://fleet:***@${host}/?authMechanism=PLAIN`);
        for (const piece of [password, decodeURIComponent(password), "Qx7"]) expect(store.location).not.toContain(piece);
      } finally {
        await store.close();
      }
    });

    test.skipIf(!mongo.restart)("the store outlives a server restart: errors while it is down, works again after", async () => {
      const store = await open("restart", { serverSelectionTimeoutMS: 500 });
      try {
        expect(await store.insertRun(run("job-a@before"))).toBe(true);
        await mongo.shutdown!();
        const err = await store.getRun("job-a@before").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StoreError);
        await mongo.restart!();
        // The driver reconnects by itself (its monitor notices within a few of its checks, which a
        // loaded machine slows down); the data survived on disk.
        expect((await eventually(() => store.getRun("job-a@before")))?.machine_id).toBe("m1");
        expect(await store.insertRun(run("job-a@before"))).toBe(false);

        mongo.kill!();
        await mongo.restart!();
        expect(await eventually(() => store.insertRun(run("job-a@after-crash")))).toBe(true);
      } finally {
        await store.close();
      }
    }, 60_000);
  });
}

/** Retries a store call that fails while the driver has not yet seen the server come back. */
async function eventually<T>(call: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await Bun.sleep(200);
    }
  }
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}
