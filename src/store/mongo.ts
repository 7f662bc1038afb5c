import { type AnyBulkWriteOperation, type Collection, type Document, MongoBulkWriteError, MongoClient, MongoNetworkError, MongoServerError, ObjectId } from "mongodb";
import { ConfigError, StoreError } from "../core/errors.ts";
import { createRedactor } from "../core/redact.ts";
import { mongoUriSecrets, redactMongoUri } from "./uri-redact.ts";
import { type AuditRecord, type ClaimOutcome, type CommandAck, type CommandRecord, type JobDocument, MACHINE_OPTIONAL_FIELDS, type MachineRecord, type RunQuery, type RunRecord, type SerialRecord, type Store } from "./types.ts";

/**
 * The fleet store: MongoDB, or anything that speaks its wire protocol (Atlas, FerretDB v1,
 * DocumentDB). The collections are the seed's, so its monitoring queries keep working, and nothing
 * here leans on what those servers do differently: claims are unique `_id` inserts, updates are
 * last-writer-wins, expiry is a sweep (FerretDB v1 has no TTL indexes).
 */

export interface MongoStoreOptions {
  uri: string;
  dbName: string;
  appName?: string;
  /** How long an operation waits for a reachable server before it fails. */
  serverSelectionTimeoutMS?: number;
}

const DUPLICATE_KEY = new Set([11000, 11001]);
// What a server answers for an aggregation stage or accumulator it lacks (FerretDB v1: 238).
const NOT_IMPLEMENTED = new Set([238, 115]);
const CHUNK = 500;
const FERRET_POINT_LOOKUPS = 8;

type Doc = Document;
// Untyped collections: their `_id`s are strings, numbers and (seed jobs) ObjectIds, which the
// driver's filter types cannot express; the port's record types check the shapes instead.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Coll = Collection<any>;

/**
 * The driver's connection pool wakes every 100 ms to prune perished connections and top up
 * `minPoolSize` (`minPoolSizeCheckFrequencyMS`, which MongoClient's options refuse). With
 * `minPoolSize` 0 that is ten wake-ups a second of an idle agent for nothing: once a second saves
 * about a quarter of a percent of a core (bench idle row), and a checkout still refuses a perished
 * connection. Set on the parsed options before connect(), which hands them to each pool;
 * tests/contract/mongo.test.ts ("the pool checks once a second") fails if a driver upgrade stops passing it on.
 */
export const POOL_CHECK_EVERY_MS = 1000;
export function slowPoolCheck(client: MongoClient): void {
  const options = client.options as { minPoolSizeCheckFrequencyMS?: number };
  options.minPoolSizeCheckFrequencyMS ??= POOL_CHECK_EVERY_MS;
}

export async function openMongoStore(opts: MongoStoreOptions): Promise<Store> {
  // The only form of the URI that leaves this store: errors, logs, status and /healthz show `location`.
  const location = redactMongoUri(opts.uri);
  const redact = createRedactor(mongoUriSecrets(opts.uri));

  let client: MongoClient;
  try {
    client = new MongoClient(opts.uri, {
      appName: opts.appName ?? "fleetcron",
      serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 10_000,
      connectTimeoutMS: opts.serverSelectionTimeoutMS ?? 10_000,
      // Polling instead of a second, streaming monitor connection per server.
      serverMonitoringMode: "poll",
      // No operation waits forever on a connection that stopped answering (a paused or cut-off
      // server): it fails as a store error and the agent retries.
      socketTimeoutMS: 60_000,
      waitQueueTimeoutMS: 30_000,
      // Optional record fields are left out, not stored as null, so documents read back as they were written.
      ignoreUndefined: true,
    });
  } catch (err) {
    throw new ConfigError(`mongodb_uri is not a valid MongoDB connection string (${location}): ${redact(messageOf(err))}`);
  }
  slowPoolCheck(client);

  const fail = (op: string, err: unknown): StoreError => {
    if (err instanceof StoreError) return err;
    const message = redact(messageOf(err));
    if (err instanceof Error && /ServerSelection|Network|TopologyClosed|PoolCleared/.test(err.name)) {
      return new StoreError(`cannot reach the MongoDB store at ${location} (${op}): ${message}`, err);
    }
    const code = codeOf(err);
    const hint = code === 18 ? " — check the user name and password in mongodb_uri" : code === 13 ? " — the user lacks a privilege FleetCron needs (readWrite on the database)" : "";
    return new StoreError(`MongoDB store at ${location}: ${op} failed: ${message}${code !== undefined ? ` (code ${code})` : ""}${hint}`, err);
  };

  const db = client.db(opts.dbName);
  const col = (name: string) => db.collection<Doc>(name) as Coll;
  const jobs = col("jobs");
  const runs = col("job_runs");
  const machines = col("machines");
  const serials = col("serials");
  const commands = col("commands");
  const acks = col("command_acks");
  const meta = col("meta");
  const audit = col("audit");

  // FerretDB v1 (SQLite) hands only an exact `{_id: x}` filter to SQLite, decodes the whole collection
  // in Go for anything else (even `_id: {$in}`, ~15x slower per document), and lacks `$group`'s `$first`.
  let ferretV1 = false;
  let groupFirstMissing = false;
  try {
    await client.connect();
    const info = await db.command({ buildInfo: 1 });
    ferretV1 = typeof info.ferretdbVersion === "string" && /^v?1\./.test(info.ferretdbVersion);
    groupFirstMissing = ferretV1;
    await ensureIndexes();
  } catch (err) {
    await client.close().catch(() => {});
    throw fail("connect", err);
  }

  async function ensureIndexes(): Promise<void> {
    // `_id` closes the run indexes so "newest first" ties break the same way on every backend and
    // listings stay index-ordered (a sort key past the index's keys would force a full in-memory sort).
    // Never TTL: FerretDB v1 rejects `expireAfterSeconds`; the sweeper prunes instead.
    const wanted: [Coll, Document[]][] = [
      [runs, [{ scheduled_for: -1, _id: -1 }, { job_id: 1, scheduled_for: -1, _id: -1 }, { status: 1, scheduled_for: -1, _id: -1 }]],
      [jobs, [{ name: 1 }]],
      [commands, [{ created_at: 1 }]],
      [acks, [{ command_id: 1 }]],
      [audit, [{ at: -1, _id: -1 }, { job: 1, at: -1, _id: -1 }]],
    ];
    for (const [collection, keys] of wanted) {
      // One index per command: FerretDB v1.24 mis-indexes its "already exists" filter
      // (msg_createindexes.go, slices.Delete in a loop) and drops the connection when one
      // createIndexes names two existing indexes, i.e. on every open after the first.
      for (const key of keys) {
        try {
          await collection.createIndex(key);
        } catch (err) {
          // An index of the same name with other options (made by hand, say) still serves the queries.
          if (codeOf(err) !== 85 && codeOf(err) !== 86) throw err;
        }
      }
    }
  }

  /** The claim primitive: a unique `_id` insert, where a duplicate key is a lost race. */
  async function claim(collection: Coll, doc: Doc): Promise<boolean> {
    try {
      await collection.insertOne({ ...doc });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      // A connection that broke after sending leaves the insert's fate unknown; a read tells whether
      // it landed and whose it is. Only an exact match of our document counts as a win.
      if (err instanceof MongoNetworkError) {
        const stored = await collection.findOne({ _id: doc._id }).catch(() => null);
        if (stored) return sameValue(doc, stored);
      }
      throw err;
    }
  }

  /** Last-writer-wins write of a whole document. */
  async function put(collection: Coll, doc: Doc): Promise<void> {
    const { _id, ...rest } = doc;
    try {
      await collection.replaceOne({ _id }, rest, { upsert: true });
    } catch (err) {
      // Two racing upserts of a new _id: one inserts, the other may get a duplicate key (FerretDB v1
      // decides "no match, insert" in Go). The document exists now, so a second try replaces it.
      if (!isDuplicateKey(err)) throw err;
      await collection.replaceOne({ _id }, rest, { upsert: true });
    }
  }

  async function byIds(collection: Coll, ids: unknown[]): Promise<Doc[]> {
    const found: Doc[] = [];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      // On FerretDB v1 each `{_id}` lookup is one scan inside SQLite, while `$in` is one scan decoded
      // in Go; a handful of the former is cheaper, hundreds are not.
      if (ferretV1 && chunk.length <= FERRET_POINT_LOOKUPS) {
        const docs = await Promise.all(chunk.map((_id) => collection.findOne({ _id })));
        for (const doc of docs) if (doc) found.push(doc);
      } else {
        found.push(...(await collection.find({ _id: { $in: chunk } }).toArray()));
      }
    }
    return found;
  }

  /** The stored job document for an id string (an ObjectId first when the string could be one). */
  async function findJob(id: string): Promise<Doc | null> {
    for (const _id of jobIdCandidates(id)) {
      const doc = await jobs.findOne({ _id });
      if (doc) return doc;
    }
    return null;
  }

  /** The newest run per job, highest attempt first among those of one instant. */
  function pickLatest(docs: Iterable<Doc>, into = new Map<string, RunRecord>()): Map<string, RunRecord> {
    for (const doc of docs) {
      const run = toRecord<RunRecord>(doc)!;
      const seen = into.get(run.job_id);
      if (!seen || run.scheduled_for > seen.scheduled_for || (run.scheduled_for.getTime() === seen.scheduled_for.getTime() && run.attempt > seen.attempt)) {
        into.set(run.job_id, run);
      }
    }
    return into;
  }

  async function latestByIndex(): Promise<Map<string, RunRecord>> {
    // Sorted and grouped on the leading keys of {job_id, scheduled_for} with `$first` only: the shape
    // MongoDB answers from the index (a distinct scan) instead of reading the history.
    const firsts = await runs
      .aggregate<{ _id: unknown; at: Date }>([{ $sort: { job_id: 1, scheduled_for: -1 } }, { $group: { _id: "$job_id", at: { $first: "$scheduled_for" } } }])
      .toArray();
    const latest = new Map<string, RunRecord>();
    // Then every attempt at each job's newest instant (they share it), through the same index.
    for (let i = 0; i < firsts.length; i += CHUNK) {
      const $or = firsts.slice(i, i + CHUNK).map((f) => ({ job_id: f._id, scheduled_for: f.at }));
      pickLatest(await runs.find({ $or }).toArray(), latest);
    }
    return latest;
  }

  async function latestByScan(): Promise<Map<string, RunRecord>> {
    // FerretDB v1 decodes every run in Go for any query, so one pass that keeps each job's newest
    // document is the cheapest it gets (a projection saves nothing there; a second round of
    // lookups by _id would cost a table scan each).
    const latest = new Map<string, RunRecord>();
    for await (const doc of runs.find({})) pickLatest([doc], latest);
    return latest;
  }

  const methods: Omit<Store, "kind" | "location" | "finalWritesGuarded"> = {
    async close() {
      await client.close();
    },
    async serverTime() {
      const hello = await db.command({ hello: 1 });
      // MongoDB and FerretDB both send localTime; a server that does not leaves us this host's clock,
      // which makes the measured skew 0 (the one place this backend reads the clock).
      return hello.localTime instanceof Date ? hello.localTime : new Date();
    },

    async listJobs() {
      return (await jobs.find({}).sort({ name: 1, _id: 1 }).toArray()).map(toJob);
    },
    async getJob(id) {
      const doc = await findJob(id);
      return doc ? toJob(doc) : null;
    },
    async findJobByName(name) {
      const doc = await jobs.findOne({ name }, { sort: { _id: 1 } });
      return doc ? toJob(doc) : null;
    },
    async createJob(doc) {
      const { _id: _ignored, ...rest } = doc as JobDocument;
      const _id = new ObjectId();
      await jobs.insertOne({ ...rest, _id });
      return _id.toHexString();
    },
    async createJobWithId(id, doc) {
      const { _id: _ignored, ...rest } = doc as JobDocument;
      await jobs.insertOne({ ...rest, _id: jobIdCandidates(id)[0] });
    },
    async replaceJob(id, doc) {
      const { _id: _ignored, ...rest } = doc as JobDocument;
      for (const _id of jobIdCandidates(id)) {
        if ((await jobs.replaceOne({ _id }, rest)).matchedCount > 0) return;
      }
    },
    async deleteJob(id) {
      for (const _id of jobIdCandidates(id)) {
        if ((await jobs.deleteOne({ _id })).deletedCount === 1) return true;
      }
      return false;
    },
    async getJobsRevision() {
      const doc = await meta.findOne({ _id: "jobs" });
      return typeof doc?.revision === "string" ? doc.revision : "";
    },
    async bumpJobsRevision(now) {
      await put(meta, { _id: "jobs", revision: `${now.getTime()}-${crypto.randomUUID()}`, updated_at: now });
    },
    async getRevisions() {
      const docs = await meta.find({ _id: { $in: ["jobs", "commands"] } }).toArray();
      const revisionOf = (id: string) => {
        const revision = docs.find((d) => d._id === id)?.revision;
        return typeof revision === "string" ? revision : "";
      };
      return { jobs: revisionOf("jobs"), commands: revisionOf("commands") };
    },

    async insertRun(run: RunRecord) {
      return claim(runs, run);
    },
    async getRun(id) {
      return toRecord<RunRecord>(await runs.findOne({ _id: id }));
    },
    async getRuns(ids) {
      return (await byIds(runs, ids)).map((d) => toRecord<RunRecord>(d)!);
    },
    async insertRuns(batch) {
      if (batch.length === 0) return [];
      try {
        await runs.insertMany(batch.map((run) => ({ ...run })), { ordered: false });
        return batch.map(() => "won" as const);
      } catch (err) {
        return claimOutcomes(batch.length, err);
      }
    },
    async finishRuns(finals) {
      if (finals.length === 0) return;
      // FerretDB v1 hands only a bare `{_id}` filter to SQLite; with `status` too it decodes the whole
      // run history in Go for every update (and is not atomic either), so there the fence guards it.
      const filter = (id: string) => (ferretV1 ? { _id: id } : { _id: id, status: "running" });
      // On FerretDB v1 each update of one `update` command keeps its query's rows (and, with the
      // PostgreSQL handler, a pool connection) open until the whole command is done: a `multi: false`
      // match is never read to its end and msg_update.go closes the iterators only on return. Each
      // UPDATE then needs one more connection, so a batch of 50 (or 3 agents' batches of 20) takes
      // the whole pool of 50 and waits forever for another; FerretDB then answers nothing, not even
      // a ping. With `multi: true` the `_id` query is read to its end, which frees its connection
      // before the next update: a command holds at most two. `_id` is unique: the same write.
      const kind = ferretV1 ? "updateMany" : "updateOne";
      const ops = finals.map(({ id, patch }) => ({ [kind]: { filter: filter(id), update: setAndUnset(patch) } })) as unknown as AnyBulkWriteOperation[];
      await runs.bulkWrite(ops, { ordered: false });
    },
    async listRunning(machineId) {
      const filter: Document = { status: "running" };
      if (machineId !== undefined) filter.machine_id = machineId;
      return (await runs.find(filter).sort({ scheduled_for: 1, _id: 1 }).toArray()).map((d) => toRecord<RunRecord>(d)!);
    },
    async updateRun(id, patch) {
      const update = setAndUnset(patch);
      if (Object.keys(update).length) await runs.updateOne({ _id: id }, update);
    },
    async listOccurrenceRuns(jobId, from, to, limit) {
      if (limit <= 0) return [];
      const docs = await runs.find({ job_id: jobId, scheduled_for: { $gte: from, $lte: to } }).sort({ scheduled_for: 1, _id: 1 }).limit(limit).toArray();
      return docs.map((d) => toRecord<RunRecord>(d)!);
    },
    async listRuns(query: RunQuery) {
      if (query.limit <= 0) return []; // a limit of 0 means "no limit" to MongoDB
      const filter: Document = {};
      if (query.job_id !== undefined) filter.job_id = query.job_id;
      if (query.job_name !== undefined) filter.job_name = query.job_name;
      if (query.status !== undefined) filter.status = query.status;
      const docs = await runs.find(filter).sort({ scheduled_for: -1, _id: -1 }).limit(query.limit).toArray();
      return docs.map((d) => toRecord<RunRecord>(d)!);
    },
    async latestRunsByJob() {
      if (!groupFirstMissing) {
        try {
          return await latestByIndex();
        } catch (err) {
          if (!NOT_IMPLEMENTED.has(codeOf(err) ?? -1)) throw err;
          groupFirstMissing = true;
        }
      }
      return latestByScan();
    },
    async pruneRuns(before) {
      return (await runs.deleteMany({ scheduled_for: { $lt: before } })).deletedCount;
    },

    async putMachine(machine: MachineRecord) {
      await put(machines, machine);
    },
    async beat(machine) {
      // The store's clock stamps last_seen, so an agent's clock skew never makes it look dead.
      // It replaces the record: optional fields this heartbeat lacks are unset, not left as they were.
      const { _id, ...fields } = machine;
      const set = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
      const gone = Object.keys(MACHINE_OPTIONAL_FIELDS).filter((key) => !(key in set));
      const unset = gone.length > 0 ? { $unset: Object.fromEntries(gone.map((key) => [key, ""])) } : {};
      await machines.updateOne({ _id }, { $set: set, ...unset, $currentDate: { last_seen: true } }, { upsert: true });
    },
    async getMachine(id) {
      return toRecord<MachineRecord>(await machines.findOne({ _id: id }));
    },
    async listMachines() {
      return (await machines.find({}).sort({ _id: 1 }).toArray()).map((d) => toRecord<MachineRecord>(d)!);
    },
    async insertSerial(serial: SerialRecord) {
      return claim(serials, serial);
    },
    async listSerials() {
      return (await serials.find({}).sort({ _id: 1 }).toArray()).map((d) => toRecord<SerialRecord>(d)!);
    },
    async touchSerial(serial, machineId, now) {
      await serials.updateOne({ _id: serial, machine_id: machineId }, { $set: { last_seen: now } });
    },
    async deleteSerial(serial, machineId, lastSeen) {
      // FerretDB v1 checks this filter in Go and then deletes by _id alone, so there the
      // "still as read" part narrows the race rather than closing it; the count is still the database's.
      const filter: Document = { _id: serial, machine_id: machineId };
      if (lastSeen) filter.last_seen = lastSeen;
      return (await serials.deleteOne(filter)).deletedCount === 1;
    },

    async insertCommand(command: CommandRecord) {
      await commands.insertOne({ ...command });
      // A plain replace: two writers racing still leave a value no agent has seen, which is all it must do.
      await put(meta, { _id: "commands", revision: `${command.created_at.getTime()}-${crypto.randomUUID()}`, updated_at: command.created_at });
    },
    async listCommands(since) {
      const docs = await commands.find({ created_at: { $gte: since } }).sort({ created_at: 1, _id: 1 }).toArray();
      return docs.map(toCommand);
    },
    async insertAck(ack: CommandAck) {
      return claim(acks, ack);
    },
    async listAcks(commandId) {
      return (await acks.find({ command_id: commandId }).sort({ _id: 1 }).toArray()).map((d) => toRecord<CommandAck>(d)!);
    },
    async pruneCommands(before) {
      const old = await commands.find({ created_at: { $lt: before } }, { projection: { _id: 1 } }).toArray();
      if (old.length === 0) return 0;
      const ids = old.map((c) => c._id);
      let pruned = 0;
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK);
        // Commands before their acks: an ack left behind by a crash here is harmless, a command
        // whose acks vanished would be applied again.
        pruned += (await commands.deleteMany({ _id: { $in: chunk } })).deletedCount;
        // Acks name a hand-inserted command's ObjectId by its hex string (toCommand).
        await acks.deleteMany({ command_id: { $in: [...chunk, ...chunk.filter((id) => id instanceof ObjectId).map(idString)] } });
      }
      return pruned;
    },

    async insertAudit(record: AuditRecord) {
      await audit.insertOne({ ...record });
    },
    async listAudit(query) {
      if (query.limit <= 0) return [];
      const filter: Document = query.job === undefined ? {} : { job: query.job };
      return (await audit.find(filter).sort({ at: -1, _id: -1 }).limit(query.limit).toArray()).map((d) => toRecord<AuditRecord>(d)!);
    },
    async pruneAudit(before) {
      return (await audit.deleteMany({ at: { $lt: before } })).deletedCount;
    },
  };

  // Every failure leaves as a StoreError that names the store and the operation; the driver's own
  // error (and its stack) is kept as the cause, never shown.
  for (const [name, method] of Object.entries(methods) as [string, (...args: unknown[]) => Promise<unknown>][]) {
    (methods as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      try {
        return await method(...args);
      } catch (err) {
        throw fail(name, err);
      }
    };
  }

  return { kind: "mongo", location, finalWritesGuarded: !ferretV1, ...methods };
}

/** `$set` for defined fields, `$unset` for fields patched to undefined (as the SQLite backend's spread clears them). */
function setAndUnset(patch: Record<string, unknown>): Document {
  const $set: Document = {};
  const $unset: Document = {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === "_id") continue;
    if (value === undefined) $unset[key] = "";
    else $set[key] = value;
  }
  const update: Document = {};
  if (Object.keys($set).length) update.$set = $set;
  if (Object.keys($unset).length) update.$unset = $unset;
  return update;
}

/**
 * What an unordered insertMany that failed says of each record. A duplicate key is a lost race;
 * any other write error, or a failure with no per-record report (a network error after sending),
 * leaves the records it may concern `unknown`. FerretDB v1 inserts in transactions of 100 and
 * redoes a failed one record by record, stopping at the first other error, so once any
 * non-duplicate error is reported no record without its own report can be trusted as won.
 */
function claimOutcomes(count: number, err: unknown): ClaimOutcome[] {
  if (!(err instanceof MongoBulkWriteError) && !(err instanceof MongoServerError && isDuplicateKey(err) && count === 1)) {
    return new Array<ClaimOutcome>(count).fill("unknown");
  }
  if (!(err instanceof MongoBulkWriteError)) return ["lost"];
  const outcomes = new Array<ClaimOutcome>(count).fill("won");
  const writeErrors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
  let other = false;
  let duplicates = 0;
  for (const we of writeErrors) {
    if (typeof we?.index !== "number") continue;
    if (DUPLICATE_KEY.has(we.code)) (outcomes[we.index] = "lost"), duplicates++;
    else (outcomes[we.index] = "unknown"), (other = true);
  }
  const inserted = err.result?.insertedCount;
  if (other || writeErrors.length === 0 || (typeof inserted === "number" && inserted !== count - duplicates)) {
    for (let i = 0; i < count; i++) if (outcomes[i] === "won") outcomes[i] = "unknown";
  }
  return outcomes;
}

/** Both forms a job id may be stored in: seed jobs carry ObjectIds, hand-made ones may carry strings. */
function jobIdCandidates(id: string): unknown[] {
  return /^[0-9a-f]{24}$/i.test(id) ? [new ObjectId(id), id] : [id];
}

function idString(id: unknown): string {
  return id instanceof ObjectId ? id.toHexString() : String(id);
}

function toJob(doc: Doc): JobDocument {
  return { ...doc, _id: idString(doc._id) };
}

/**
 * A command as the agent reads it. One inserted by hand (mongosh's insertOne) has an ObjectId `_id`:
 * a fresh object on every read, which no set of applied ids ever matched, so it was applied again on
 * every heartbeat; as its hex string it is the same id each time, and its acks name it so.
 * A missing `target` is "every agent", as the CLI writes it.
 */
function toCommand(doc: Doc): CommandRecord {
  return { ...(doc as CommandRecord), _id: idString(doc._id), target: doc.target === undefined || doc.target === null ? null : String(doc.target) };
}

/** Records come back as written; a seed-era run may carry an ObjectId job_id, which the port exposes as hex. */
function toRecord<T>(doc: Doc | null): T | null {
  if (!doc) return null;
  const out: Document = { ...doc };
  if (out.job_id instanceof ObjectId) out.job_id = out.job_id.toHexString();
  return out as T;
}

/** Whether `stored` holds every defined field of `ours` (a read-back after an ambiguous insert). */
function sameValue(ours: unknown, stored: unknown): boolean {
  if (ours instanceof Date) return stored instanceof Date && ours.getTime() === stored.getTime();
  if (ours instanceof ObjectId) return stored instanceof ObjectId && ours.equals(stored);
  if (Array.isArray(ours)) return Array.isArray(stored) && ours.length === stored.length && ours.every((v, i) => sameValue(v, stored[i]));
  if (ours !== null && typeof ours === "object") {
    if (stored === null || typeof stored !== "object") return false;
    return Object.entries(ours).every(([k, v]) => v === undefined || sameValue(v, (stored as Record<string, unknown>)[k]));
  }
  return ours === stored;
}

function isDuplicateKey(err: unknown): boolean {
  return DUPLICATE_KEY.has(codeOf(err) ?? -1);
}

function codeOf(err: unknown): number | undefined {
  if (err instanceof MongoServerError && typeof err.code === "number") return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
