import type { Subprocess } from "bun";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { MongoClient, ObjectId } from "mongodb";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import { sleep } from "./util.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const MAIN = join(ROOT, "src/main.ts");

export type StoreSpec = { kind: "sqlite"; path: string } | { kind: "mongo"; uri: string; db: string };

export interface LaunchOptions {
  /** A compiled binary to run instead of `bun src/main.ts`. */
  bin?: string;
  /** Extra flags for `bun` (e.g. --preload, --cpu-prof) when running from source. */
  bunFlags?: string[];
}

/** How agents are started in this run (set once by the runner from its flags). */
export const launch: LaunchOptions = {};

/** `main` overrides the entry point (another checkout's src/main.ts, for side-by-side comparisons). */
function command(extraBunFlags: string[] = [], main?: string): string[] {
  if (main) return [process.execPath, ...(launch.bunFlags ?? []), ...extraBunFlags, main];
  if (launch.bin) return [launch.bin];
  return [process.execPath, ...(launch.bunFlags ?? []), ...extraBunFlags, MAIN];
}

const RUNNING = /agent \S+ running: /;

/** Agent processes still running, killed if the bench exits early (a failure, Ctrl-C). */
const live = new Set<Subprocess>();
process.on("exit", () => {
  for (const proc of live) proc.kill("SIGKILL");
});

/** One FleetCron machine: its own FLEETCRON_HOME and config file, started as a real process. */
export class Agent {
  readonly dir: string;
  readonly configPath: string;
  proc: Subprocess | null = null;
  logPath = "";
  private starts = 0;

  constructor(
    readonly machineId: string,
    config: Record<string, unknown>,
    private readonly extraEnv: Record<string, string> = {},
    readonly main?: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `fleetcron-bench-${machineId}-`));
    this.configPath = join(this.dir, "config.json");
    mkdirSync(join(this.dir, "home"), { recursive: true });
    writeFileSync(this.configPath, JSON.stringify({ machine_id: machineId, ...config }, null, 2), { mode: 0o600 });
  }

  get env(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("FLEETCRON_")) env[k] = v;
    return { ...env, FLEETCRON_HOME: join(this.dir, "home"), FLEETCRON_CONFIG: this.configPath, NO_COLOR: "1", ...this.extraEnv };
  }

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(extraBunFlags: string[] = []): void {
    this.logPath = join(this.dir, `agent-${++this.starts}.log`);
    const fd = openSync(this.logPath, "a");
    const proc = Bun.spawn([...command(extraBunFlags, this.main), "run"], { env: this.env, stdout: fd, stderr: fd, stdin: "ignore" });
    this.proc = proc;
    live.add(proc);
    void proc.exited.then(() => live.delete(proc));
    closeSync(fd);
  }

  log(): string {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  async waitForLog(text: string | RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const content = this.log();
      if (typeof text === "string" ? content.includes(text) : text.test(content)) return;
      if (!this.alive) throw new Error(`${this.machineId} exited before logging ${text}:\n${content.slice(-2000)}`);
      await sleep(50);
    }
    throw new Error(`${this.machineId}: timed out waiting for ${text}:\n${this.log().slice(-2000)}`);
  }

  /** Starts and waits for the agent's "running" line (v1: `running: serial N`; v2: `running: spread placement`). */
  async up(timeoutMs = 60_000, extraBunFlags: string[] = []): Promise<void> {
    this.start(extraBunFlags);
    await this.waitForLog(RUNNING, timeoutMs);
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.proc && this.alive) this.proc.kill(signal);
    await this.proc?.exited;
  }

  async cli(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const proc = Bun.spawn([...command([], this.main), ...args], { env: this.env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Bench-side store clients give up instead of hanging a run on a store that stopped answering. */
const CLIENT_OPTIONS = { serverSelectionTimeoutMS: 10_000, connectTimeoutMS: 10_000, socketTimeoutMS: 60_000 } as const;

/** Several agents sharing one store. */
export class Fleet {
  readonly agents: Agent[];

  constructor(
    readonly name: string,
    readonly store: StoreSpec,
    count: number,
    settings: Record<string, unknown> = {},
    /** Environment for every agent, or per agent (by index): e.g. a statement counter file each. */
    extraEnv: Record<string, string> | ((index: number) => Record<string, string>) = {},
    main?: string,
    /** Per agent: a different store URI (each agent through its own counting proxy, say). */
    storeOf?: (index: number) => StoreSpec,
  ) {
    const storeConfig = (s: StoreSpec) => (s.kind === "sqlite" ? { sqlite_path: s.path } : { mongodb_uri: s.uri, db_name: s.db });
    this.agents = Array.from(
      { length: count },
      (_, i) => new Agent(`${name}-${String.fromCharCode(97 + i)}`, { tz: "UTC", ...storeConfig(storeOf?.(i) ?? store), ...settings }, typeof extraEnv === "function" ? extraEnv(i) : extraEnv, main),
    );
  }

  get machineIds(): string[] {
    return this.agents.map((a) => a.machineId);
  }

  /** Starts the agents one after another, so serials follow their order (a = serial 1). */
  async up(timeoutMs = 60_000, extraBunFlags: string[] = []): Promise<void> {
    for (const agent of this.agents) await agent.up(timeoutMs, extraBunFlags);
  }

  async apply(jobs: Record<string, unknown>[]): Promise<void> {
    const file = join(this.agents[0]!.dir, `jobs-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(jobs));
    const result = await this.agents[0]!.cli(["jobs", "apply", file]);
    if (result.exitCode !== 0) throw new Error(`jobs apply failed (${result.exitCode}): ${result.stderr}${result.stdout}`);
  }

  async down(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await Promise.all(this.agents.map((a) => a.kill(signal)));
  }

  /** SIGTERM (agents close their store connections), then SIGKILL for any still running after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    for (const a of this.agents) if (a.alive) a.proc!.kill("SIGTERM");
    await Promise.race([Promise.all(this.agents.map((a) => a.proc?.exited)), sleep(graceMs)]);
    await this.down("SIGKILL");
  }

  cleanup(): void {
    for (const agent of this.agents) agent.cleanup();
  }
}

/**
 * Writes many job documents straight into the store (what `jobs apply` stores, without its
 * one-by-one writes), for bursts of thousands of jobs. Agents started afterwards load them.
 */
export async function insertJobs(store: StoreSpec, docs: Record<string, unknown>[]): Promise<void> {
  const at = new Date();
  if (store.kind === "sqlite") {
    const s = openSqliteStore(store.path);
    for (const doc of docs) await s.createJob({ ...doc, created_at: at, updated_at: at });
    await s.bumpJobsRevision(at);
    await s.close();
    return;
  }
  const client = new MongoClient(store.uri, CLIENT_OPTIONS);
  try {
    const db = client.db(store.db);
    for (let i = 0; i < docs.length; i += 1000) {
      await db.collection("jobs").insertMany(docs.slice(i, i + 1000).map((d) => ({ _id: new ObjectId(), ...d, created_at: at, updated_at: at })));
    }
    await db.collection("meta").replaceOne({ _id: "jobs" as never }, { revision: `${at.getTime()}-bench`, updated_at: at }, { upsert: true });
  } finally {
    await client.close();
  }
}

/** Every run record of a store (attempts included), as plain objects with the fields the bench reads. */
export async function readRuns(store: StoreSpec): Promise<{ _id: string; run_id: string; attempt: number; status: string; claimed_at: number; machine_id?: string }[]> {
  if (store.kind === "sqlite") {
    const s = openSqliteStore(store.path);
    const runs = await s.listRuns({ limit: 1_000_000 });
    await s.close();
    return runs.map((r) => ({ _id: r._id, run_id: r.run_id, attempt: r.attempt, status: r.status, claimed_at: r.claimed_at.getTime(), machine_id: r.machine_id }));
  }
  const client = new MongoClient(store.uri, CLIENT_OPTIONS);
  try {
    const docs = await client
      .db(store.db)
      .collection("job_runs")
      .find({}, { projection: { run_id: 1, attempt: 1, status: 1, claimed_at: 1, machine_id: 1 } })
      .toArray();
    return docs.map((d) => ({ _id: String(d._id), run_id: d.run_id, attempt: d.attempt, status: d.status, claimed_at: new Date(d.claimed_at).getTime(), machine_id: d.machine_id }));
  } finally {
    await client.close();
  }
}

/** Best effort and bounded (15 s): a FerretDB-pg database is dropped with its PostgreSQL database anyway. */
export async function dropDb(uri: string, db: string): Promise<void> {
  const client = new MongoClient(uri, { ...CLIENT_OPTIONS, socketTimeoutMS: 15_000 });
  try {
    await client.db(db).dropDatabase();
  } catch (error) {
    process.stderr.write(`dropDatabase ${db} on ${uri}: ${(error as Error).message}\n`);
  } finally {
    await Promise.race([client.close(true), sleep(2000)]);
  }
}
