import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { StoreError } from "../core/errors.ts";
import { checkParentDir, checkPrivateFile, createPrivateFile, PRIVATE_DIR_MODE } from "../core/private-files.ts";
import type {
  AuditRecord,
  ClaimOutcome,
  CommandAck,
  CommandRecord,
  FinalWrite,
  JobDocument,
  MachineRecord,
  RunQuery,
  RunRecord,
  SerialRecord,
  Store,
} from "./types.ts";
import { newJobId } from "./ids.ts";
import { unreadableJob } from "./unreadable.ts";

/**
 * The embedded store: one SQLite file that several agent processes on one host may share (WAL,
 * busy timeout). Documents are kept as JSON beside the few columns that queries filter or sort on,
 * so the record shapes stay those of the MongoDB collections.
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, name TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_name ON jobs(name);
CREATE TABLE IF NOT EXISTS meta (id TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_runs (
  id TEXT PRIMARY KEY, job_id TEXT NOT NULL, job_name TEXT NOT NULL,
  scheduled_for INTEGER NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_runs_scheduled ON job_runs(scheduled_for);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs(job_id, scheduled_for);
CREATE INDEX IF NOT EXISTS job_runs_status ON job_runs(status, scheduled_for);
CREATE TABLE IF NOT EXISTS machines (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS serials (id INTEGER PRIMARY KEY, machine_id TEXT NOT NULL, last_seen INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS commands_created ON commands(created_at);
CREATE TABLE IF NOT EXISTS command_acks (id TEXT PRIMARY KEY, command_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS command_acks_command ON command_acks(command_id);
CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, at INTEGER NOT NULL, job TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE INDEX IF NOT EXISTS audit_job ON audit(job, at);
`;

// JSON has no dates; tag them so records come back with the same `Date` fields they went in with.
function encode(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v) {
    const original = this[key];
    return original instanceof Date ? { $date: original.getTime() } : v;
  });
}

// Dates are revived in a loop, not by a JSON.parse reviver: the reviver recurses once per level,
// and one job body nested 10,000 deep overflowed the stack and stopped every job's listing.
function decode<T>(text: string): T {
  const root: unknown = JSON.parse(text);
  const pending: unknown[] = root !== null && typeof root === "object" ? [root] : [];
  while (pending.length > 0) {
    const container = pending.pop() as Record<string, unknown>;
    for (const key of Object.keys(container)) {
      const v = container[key];
      if (v === null || typeof v !== "object") continue;
      const date = (v as { $date?: unknown }).$date;
      if (typeof date === "number" && Object.keys(v).length === 1) container[key] = new Date(date);
      else pending.push(v);
    }
  }
  const date = (root as { $date?: unknown } | null)?.$date;
  return (typeof date === "number" && Object.keys(root as object).length === 1 ? new Date(date) : root) as T;
}

type Row = { doc: string };

/** `rows` job_runs rows written by one statement (`runColumns` gives each row's values, in order). */
const runRowsSql = (verb: "INSERT" | "INSERT OR REPLACE", rows: number): string =>
  `${verb} INTO job_runs (id, job_id, job_name, scheduled_for, status, doc) VALUES ${Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?)").join(",")}`;
const runColumns = (run: RunRecord): (string | number)[] => [run._id, run.job_id, run.job_name, run.scheduled_for.getTime(), run.status, encode(run)];
/** Rows per multi-row statement: 6 parameters each stays far below SQLite's bound-parameter limit. */
const ROWS_PER_STATEMENT = 500;

/**
 * The database decides what is sent where with this host's secrets, so it is opened only when
 * neither it, its journal files nor its folder could have been written by another user, never
 * through a link, and it is created 0600 before SQLite opens it (SQLite gives `-wal` and `-shm`
 * the database file's mode). See core/private-files.ts.
 */
function prepareDatabaseFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
  checkParentDir(path);
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) checkPrivateFile(file);
  createPrivateFile(path, "");
}

export function openSqliteStore(path: string): Store {
  if (path !== ":memory:") prepareDatabaseFile(path);
  const db = new Database(path, { create: true, strict: true });
  // WAL lets readers and one writer work at once across processes; the busy timeout turns brief
  // lock contention between agents into a short wait instead of an error.
  db.exec("PRAGMA busy_timeout = 10000");
  // Switching a new file to WAL takes a lock that busy_timeout does not wait for: agents opening one
  // fresh file together retry instead of failing.
  for (let tries = 0; ; tries++) {
    try {
      db.exec("PRAGMA journal_mode = WAL");
      break;
    } catch (err) {
      if (tries >= 200 || !/SQLITE_BUSY|database is locked/i.test(String((err as Error)?.message ?? err) + String((err as { code?: string }).code ?? ""))) throw err;
      Bun.sleepSync(25 + Math.random() * 25);
    }
  }
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec(SCHEMA);

  const one = <T>(sql: string, ...params: (string | number | null)[]): T | null => {
    const row = db.query<Row, (string | number | null)[]>(sql).get(...params);
    return row ? decode<T>(row.doc) : null;
  };
  const all = <T>(sql: string, ...params: (string | number | null)[]): T[] =>
    db.query<Row, (string | number | null)[]>(sql).all(...params).map((row) => decode<T>(row.doc));
  const changes = (sql: string, ...params: (string | number | null)[]): number => db.query(sql).run(...params).changes;

  // One row that cannot be decoded (deeper than JSON.parse reaches, corrupt text) is reported as
  // that job's problem (store/unreadable.ts), never as a failure of every listing.
  const jobDoc = (row: { id: string; name?: string | null; doc: string } | null): JobDocument | null => {
    if (!row) return null;
    try {
      return { ...decode<Omit<JobDocument, "_id">>(row.doc), _id: row.id };
    } catch (error) {
      return unreadableJob(row.id, row.name ?? undefined, (error as Error)?.message ?? String(error));
    }
  };

  const writeRun = (run: RunRecord, mode: "INSERT" | "REPLACE"): number =>
    changes(mode === "INSERT" ? `${runRowsSql("INSERT", 1)} ON CONFLICT(id) DO NOTHING` : runRowsSql("INSERT OR REPLACE", 1), ...runColumns(run));

  const updateRunTx = db.transaction((id: string, patch: Partial<RunRecord>) => {
    const current = one<RunRecord>("SELECT doc FROM job_runs WHERE id = ?", id);
    if (current) writeRun({ ...current, ...patch, _id: id }, "REPLACE");
  });
  // A batch of claims is one transaction: all of it lands or none of it does. It is one statement
  // per chunk, not one per row: RETURNING names the rows this insert wrote, so a row not returned
  // lost to an existing one (or to an earlier row of the same batch).
  const insertRunsTx = db.transaction((runs: RunRecord[]): ClaimOutcome[] => {
    const written = new Set<string>();
    for (let i = 0; i < runs.length; i += ROWS_PER_STATEMENT) {
      const chunk = runs.slice(i, i + ROWS_PER_STATEMENT);
      const sql = `${runRowsSql("INSERT", chunk.length)} ON CONFLICT(id) DO NOTHING RETURNING id`;
      for (const row of db.query<{ id: string }, (string | number)[]>(sql).all(...chunk.flatMap(runColumns))) written.add(row.id);
    }
    return runs.map((run) => (written.delete(run._id) ? "won" : "lost"));
  });
  const insertCommandTx = db.transaction((command: CommandRecord, revision: string) => {
    db.query("INSERT INTO commands (id, created_at, doc) VALUES (?, ?, ?)").run(command._id, command.created_at.getTime(), encode(command));
    db.query("INSERT OR REPLACE INTO meta (id, value) VALUES ('commands', ?)").run(revision);
  });
  // Only attempts still running are finished (a late result never turns `lost` into `success`):
  // one read of those and one write, per chunk.
  const finishRunsTx = db.transaction((finals: FinalWrite[]) => {
    for (let i = 0; i < finals.length; i += ROWS_PER_STATEMENT) {
      const chunk = finals.slice(i, i + ROWS_PER_STATEMENT);
      const running = new Map(
        db
          .query<{ id: string; doc: string }, string[]>(`SELECT id, doc FROM job_runs WHERE status = 'running' AND id IN (${chunk.map(() => "?").join(",")})`)
          .all(...chunk.map((f) => f.id))
          .map((row) => [row.id, decode<RunRecord>(row.doc)]),
      );
      const finished: RunRecord[] = [];
      for (const { id, patch } of chunk) {
        const current = running.get(id);
        if (!current) continue;
        running.delete(id); // a second final for the same attempt in one batch finds it finished
        finished.push({ ...current, ...patch, _id: id });
      }
      if (finished.length === 0) continue;
      db.query(runRowsSql("INSERT OR REPLACE", finished.length)).run(...finished.flatMap(runColumns));
    }
  });

  const store: Store = {
    kind: "sqlite",
    location: path,
    finalWritesGuarded: true,
    async close() {
      db.close(false);
    },
    async serverTime() {
      return new Date();
    },

    async listJobs() {
      return db.query<{ id: string; name: string | null; doc: string }, []>("SELECT id, name, doc FROM jobs ORDER BY name").all().map((r) => jobDoc(r)!);
    },
    async getJob(id) {
      return jobDoc(db.query<{ id: string; name: string | null; doc: string }, [string]>("SELECT id, name, doc FROM jobs WHERE id = ?").get(id));
    },
    async findJobByName(name) {
      return jobDoc(db.query<{ id: string; name: string | null; doc: string }, [string]>("SELECT id, name, doc FROM jobs WHERE name = ? LIMIT 1").get(name));
    },
    async createJob(doc) {
      const id = newJobId();
      const { _id: _ignored, ...rest } = doc as JobDocument;
      db.query("INSERT INTO jobs (id, name, doc) VALUES (?, ?, ?)").run(id, nameOf(rest), encode(rest));
      return id;
    },
    async createJobWithId(id, doc) {
      const { _id: _ignored, ...rest } = doc as JobDocument;
      db.query("INSERT INTO jobs (id, name, doc) VALUES (?, ?, ?)").run(id, nameOf(rest), encode(rest));
    },
    async replaceJob(id, doc) {
      const { _id: _ignored, ...rest } = doc as JobDocument;
      db.query("UPDATE jobs SET name = ?, doc = ? WHERE id = ?").run(nameOf(rest), encode(rest), id);
    },
    async deleteJob(id) {
      return changes("DELETE FROM jobs WHERE id = ?", id) === 1;
    },
    async getJobsRevision() {
      return db.query<{ value: string }, []>("SELECT value FROM meta WHERE id = 'jobs'").get()?.value ?? "";
    },
    async bumpJobsRevision(now) {
      const revision = `${now.getTime()}-${crypto.randomUUID()}`;
      db.query("INSERT OR REPLACE INTO meta (id, value) VALUES ('jobs', ?)").run(revision);
    },
    async getRevisions() {
      const rows = db.query<{ id: string; value: string }, []>("SELECT id, value FROM meta WHERE id IN ('jobs', 'commands')").all();
      const revisionOf = (id: string) => rows.find((r) => r.id === id)?.value ?? "";
      return { jobs: revisionOf("jobs"), commands: revisionOf("commands") };
    },

    async insertRun(run) {
      return writeRun(run, "INSERT") === 1;
    },
    async getRun(id) {
      return one<RunRecord>("SELECT doc FROM job_runs WHERE id = ?", id);
    },
    async getRuns(ids) {
      if (ids.length === 0) return [];
      const runs: RunRecord[] = [];
      // Chunked to stay far below SQLite's bound-parameter limit.
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        runs.push(...all<RunRecord>(`SELECT doc FROM job_runs WHERE id IN (${chunk.map(() => "?").join(",")})`, ...chunk));
      }
      return runs;
    },
    async updateRun(id, patch) {
      updateRunTx.immediate(id, patch);
    },
    async insertRuns(runs) {
      return runs.length === 0 ? [] : insertRunsTx.immediate(runs);
    },
    async finishRuns(finals) {
      if (finals.length > 0) finishRunsTx.immediate(finals);
    },
    async listRunning(machineId) {
      const runs = all<RunRecord>("SELECT doc FROM job_runs WHERE status = 'running' ORDER BY scheduled_for, id");
      return machineId === undefined ? runs : runs.filter((r) => r.machine_id === machineId);
    },
    async listRuns(query: RunQuery) {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (query.job_id !== undefined) (where.push("job_id = ?"), params.push(query.job_id));
      if (query.job_name !== undefined) (where.push("job_name = ?"), params.push(query.job_name));
      if (query.status !== undefined) (where.push("status = ?"), params.push(query.status));
      const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
      return all<RunRecord>(`SELECT doc FROM job_runs ${clause} ORDER BY scheduled_for DESC, id DESC LIMIT ?`, ...params, query.limit);
    },
    async listOccurrenceRuns(jobId, from, to, limit) {
      return all<RunRecord>("SELECT doc FROM job_runs WHERE job_id = ? AND scheduled_for >= ? AND scheduled_for <= ? ORDER BY scheduled_for, id LIMIT ?", jobId, from.getTime(), to.getTime(), limit);
    },
    async latestRunsByJob() {
      const latest = new Map<string, RunRecord>();
      const rows = all<RunRecord>(
        `SELECT r.doc FROM job_runs r JOIN (SELECT job_id, MAX(scheduled_for) AS at FROM job_runs GROUP BY job_id) m
           ON r.job_id = m.job_id AND r.scheduled_for = m.at ORDER BY r.id`,
      );
      // Several attempts share one instant; the highest attempt is the one that counts.
      for (const run of rows) {
        const seen = latest.get(run.job_id);
        if (!seen || run.attempt > seen.attempt) latest.set(run.job_id, run);
      }
      return latest;
    },
    async pruneRuns(before) {
      return changes("DELETE FROM job_runs WHERE scheduled_for < ?", before.getTime());
    },

    async putMachine(machine: MachineRecord) {
      db.query("INSERT OR REPLACE INTO machines (id, doc) VALUES (?, ?)").run(machine._id, encode(machine));
    },
    async beat(machine, now) {
      db.query("INSERT OR REPLACE INTO machines (id, doc) VALUES (?, ?)").run(machine._id, encode({ ...machine, last_seen: now }));
    },
    async getMachine(id) {
      return one<MachineRecord>("SELECT doc FROM machines WHERE id = ?", id);
    },
    async listMachines() {
      return all<MachineRecord>("SELECT doc FROM machines ORDER BY id");
    },
    async insertSerial(serial: SerialRecord) {
      return (
        changes(
          "INSERT INTO serials (id, machine_id, last_seen, doc) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
          serial._id,
          serial.machine_id,
          serial.last_seen.getTime(),
          encode(serial),
        ) === 1
      );
    },
    async listSerials() {
      return all<SerialRecord>("SELECT doc FROM serials ORDER BY id");
    },
    async touchSerial(serial, machineId, now) {
      const current = one<SerialRecord>("SELECT doc FROM serials WHERE id = ? AND machine_id = ?", serial, machineId);
      if (!current) return;
      db.query("UPDATE serials SET last_seen = ?, doc = ? WHERE id = ? AND machine_id = ?").run(
        now.getTime(),
        encode({ ...current, last_seen: now }),
        serial,
        machineId,
      );
    },
    async deleteSerial(serial, machineId, lastSeen) {
      return lastSeen
        ? changes("DELETE FROM serials WHERE id = ? AND machine_id = ? AND last_seen = ?", serial, machineId, lastSeen.getTime()) === 1
        : changes("DELETE FROM serials WHERE id = ? AND machine_id = ?", serial, machineId) === 1;
    },

    async insertCommand(command: CommandRecord) {
      insertCommandTx(command, `${command.created_at.getTime()}-${crypto.randomUUID()}`);
    },
    async listCommands(since) {
      return all<CommandRecord>("SELECT doc FROM commands WHERE created_at >= ? ORDER BY created_at, id", since.getTime());
    },
    async insertAck(ack: CommandAck) {
      return changes("INSERT INTO command_acks (id, command_id, doc) VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING", ack._id, ack.command_id, encode(ack)) === 1;
    },
    async listAcks(commandId) {
      return all<CommandAck>("SELECT doc FROM command_acks WHERE command_id = ? ORDER BY id", commandId);
    },
    async pruneCommands(before) {
      const old = db.query<{ id: string }, [number]>("SELECT id FROM commands WHERE created_at < ?").all(before.getTime());
      const prune = db.transaction(() => {
        for (const { id } of old) {
          db.query("DELETE FROM command_acks WHERE command_id = ?").run(id);
          db.query("DELETE FROM commands WHERE id = ?").run(id);
        }
      });
      prune.immediate();
      return old.length;
    },

    async insertAudit(record: AuditRecord) {
      db.query("INSERT INTO audit (id, at, job, doc) VALUES (?, ?, ?, ?)").run(record._id, record.at.getTime(), record.job, encode(record));
    },
    async listAudit(query) {
      return query.job === undefined
        ? all<AuditRecord>("SELECT doc FROM audit ORDER BY at DESC, id DESC LIMIT ?", query.limit)
        : all<AuditRecord>("SELECT doc FROM audit WHERE job = ? ORDER BY at DESC, id DESC LIMIT ?", query.job, query.limit);
    },
    async pruneAudit(before) {
      return changes("DELETE FROM audit WHERE at < ?", before.getTime());
    },
  };
  // Every failure leaves as a StoreError naming the file and the operation, as the MongoDB store's
  // do: the agent counts only StoreErrors as an outage.
  for (const [name, method] of Object.entries(store) as [string, unknown][]) {
    if (typeof method !== "function") continue;
    (store as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      try {
        return await (method as (...a: unknown[]) => Promise<unknown>).apply(store, args);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw new StoreError(`SQLite store at ${path}: ${name} failed: ${(err as Error)?.message ?? String(err)}`, err);
      }
    };
  }
  return store;
}

function nameOf(doc: Record<string, unknown>): string | null {
  return typeof doc.name === "string" ? doc.name : null;
}
