import type { Subprocess } from "bun";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { MongoClient, ObjectId } from "mongodb";
import { sleep } from "./util.ts";

const PEERS = resolve(import.meta.dir, "../peers");

export interface PeerProcess {
  name: string;
  proc: Subprocess;
  logPath: string;
  log(): string;
  ready(timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Peer processes still running, killed if the bench exits early. */
const live = new Set<Subprocess>();
const dirs = new Set<string>();
process.on("exit", () => {
  for (const proc of live) proc.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function spawnPeer(name: string, script: string, env: Record<string, string>): PeerProcess {
  const dir = mkdtempSync(join(tmpdir(), `fleetcron-bench-${name}-`));
  dirs.add(dir);
  const logPath = join(dir, "peer.log");
  const fd = openSync(logPath, "a");
  const proc = Bun.spawn([process.execPath, join(PEERS, script)], { env: { ...process.env, ...env }, stdout: fd, stderr: fd, stdin: "ignore" });
  closeSync(fd);
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  const log = () => {
    try {
      return readFileSync(logPath, "utf8");
    } catch {
      return "";
    }
  };
  return {
    name,
    proc,
    logPath,
    log,
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!log().includes("ready")) {
        if (proc.exitCode !== null) throw new Error(`${name} exited: ${log().slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`${name} not ready: ${log().slice(-2000)}`);
        await sleep(50);
      }
    },
    async kill(signal = "SIGKILL") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

export interface AgendaSettings {
  uri: string;
  db: string;
  name: string;
  sink: string;
  sys: string;
  processEvery: number;
  lockLifetime?: number;
  concurrency?: number;
  maxConcurrency?: number;
  recurring?: string | null;
}

export const startAgenda = (s: AgendaSettings): PeerProcess => spawnPeer(s.name, "agenda-worker.ts", { BENCH_AGENDA: JSON.stringify(s) });
export const startCroner = (sink: string): PeerProcess => spawnPeer("croner", "croner-floor.ts", { BENCH_SINK: sink });

export interface PgbossSettings {
  url: string;
  schema: string;
  name: string;
  sink: string;
  sys: string;
  queue: string;
  tight: boolean;
  /** Connections in the worker's pool (pg-boss's default is 10; several workers share PostgreSQL's 100). */
  max?: number;
  path?: string;
}

export const startPgboss = (s: PgbossSettings): PeerProcess => spawnPeer(s.name, "pgboss-worker.ts", { BENCH_PGBOSS: JSON.stringify(s) });

export interface BullmqSettings {
  redis: string;
  prefix: string;
  name: string;
  sink: string;
  sys: string;
  queue: string;
  tight: boolean;
  concurrency?: number;
  path?: string;
}

export const startBullmq = (s: BullmqSettings): PeerProcess => spawnPeer(s.name, "bullmq-worker.ts", { BENCH_BULLMQ: JSON.stringify(s) });

/**
 * Agenda's settings. Defaults: processEvery 5 s, defaultLockLifetime 10 min, concurrency 5 per job
 * name and 20 in all. "Tight": a scan every second and FleetCron's concurrency (50). A shorter
 * lock lifetime only for failover: Agenda locks every due job before it runs the first, and drops
 * (as expired) a job whose lock got older than the lifetime while it was still filling its queue,
 * so a short lifetime stalls bursts on a store where one lock costs ~100 ms.
 */
export const AGENDA_DEFAULT = { processEvery: 5000 } as const;
export const AGENDA_TIGHT = { processEvery: 1000, concurrency: 50, maxConcurrency: 50 } as const;
export const AGENDA_TIGHT_FAILOVER = { ...AGENDA_TIGHT, lockLifetime: 2000 } as const;

/** One-shot Agenda jobs due at `at`, written the way `agenda.schedule()` stores them, in bulk. */
export async function insertAgendaJobs(uri: string, db: string, count: number, at: number): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, socketTimeoutMS: 120_000 });
  try {
    const col = client.db(db).collection("agendaJobs");
    const now = new Date();
    for (let i = 0; i < count; i += 1000) {
      const docs = [];
      for (let j = i; j < Math.min(count, i + 1000); j++) {
        docs.push({ _id: new ObjectId(), name: "ping", data: { at, i: j }, type: "normal", priority: 0, nextRunAt: new Date(at), lastModifiedBy: null, lockedAt: null, disabled: false, failCount: 0, createdAt: now });
      }
      await col.insertMany(docs);
    }
  } finally {
    await client.close();
  }
}
