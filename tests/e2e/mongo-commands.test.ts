import { afterAll, describe, expect, test } from "bun:test";
import { MongoClient, ObjectId } from "mongodb";
import { Agent } from "../../src/agent/agent.ts";
import { systemClock } from "../../src/core/clock.ts";
import { silentLogger } from "../../src/core/logger.ts";
import { openMongoStore } from "../../src/store/mongo.ts";
import { BASE_SETTINGS } from "../support/agent-harness.ts";
import { startMongoForSuite } from "../support/ferretdb.ts";

/**
 * A command inserted by hand (mongosh: `db.commands.insertOne({type: "reload-config", …})`) gets an
 * ObjectId `_id`; it must be applied once, like one the CLI sent, not on every heartbeat. Written
 * past the store, it does not change the commands revision: the agent's periodic listing (every 12
 * heartbeats, 2.4 s here) finds it.
 */

const { mongo, skipReason } = await startMongoForSuite("hand-written commands suite");
afterAll(() => mongo?.stop());

describe(`hand-written command documents on MongoDB-wire${skipReason}`, () => {
  test.skipIf(!mongo)("a command with an ObjectId _id is applied once and acknowledged once", async () => {
    const dbName = mongo!.dbName("objectid-cmd");
    const store = await openMongoStore({ uri: mongo!.uri, dbName });
    const raw = new MongoClient(mongo!.uri);
    let reloads = 0;
    const settings = { ...BASE_SETTINGS, machineId: "m-oid", heartbeatMs: 200, deadAfterMs: 2000, failoverStepMs: 400 };
    const agent = new Agent({
      store,
      clock: systemClock,
      log: silentLogger,
      settings,
      reloadConfig: async () => {
        reloads++;
        return settings;
      },
    });
    const done = agent.run();
    try {
      await Bun.sleep(500);
      const _id = new ObjectId();
      await raw.db(dbName).collection("commands").insertOne({ _id, type: "reload-config", target: null, created_at: new Date() });
      await Bun.sleep(4000); // one periodic listing (12 heartbeats) or more
      expect(reloads).toBe(1);
      const acks = await store.listAcks(_id.toHexString());
      expect(acks.map((a) => a.machine_id)).toEqual(["m-oid"]);
      // Written without a target, as by hand for every agent: applied here too, once.
      await raw.db(dbName).collection("commands").insertOne({ type: "reload-config", created_at: new Date() });
      await Bun.sleep(4000);
      expect(reloads).toBe(2);
      // Pruned with their acks, though the acks name them by their hex strings.
      expect(await store.pruneCommands(new Date(Date.now() + 60_000))).toBe(2);
      expect(await raw.db(dbName).collection("command_acks").countDocuments({})).toBe(0);
    } finally {
      agent.stop("test over");
      await done;
      await store.close();
      await raw.close();
    }
  }, 30_000);
});
