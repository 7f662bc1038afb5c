import type { Subprocess } from "bun";
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { canConnect, ferretDbBinary, freePort } from "../../tests/support/ferretdb.ts";
import { createPgDb, dropPgDb, pgBackendPids, pgDbName, pgUrl } from "./postgres.ts";
import { cpuSeconds } from "./util.ts";

/**
 * A throwaway FerretDB v1.24.2 on 127.0.0.1, like the test helper's, but with its debug server on
 * so its Prometheus counters (`/debug/metrics`) can count store operations. Handler `sqlite` (files
 * in a temp dir, what the tests use) or `pg`: FerretDB's `postgresql` handler on a PostgreSQL
 * database of its own (`fleetcron_bench_<pid>_<label>`), created here and dropped by stop().
 */
export type FerretHandler = "sqlite" | "pg";

export interface Ferret {
  handler: FerretHandler;
  /** The PostgreSQL database behind it (pg handler only). */
  pgDb?: string;
  uri: string;
  pid: number;
  metricsUrl: string;
  /** Requests served so far, by command name (`ferretdb_client_requests_total`); empty when it does not answer in 5 s. */
  requests(): Promise<Map<string, number>>;
  /** Whether it answers a `ping` within `timeoutMs` (FerretDB-pg has been seen to stop answering). */
  answers(timeoutMs?: number): Promise<boolean>;
  /**
   * The store's processes: FerretDB, and with the pg handler the PostgreSQL backends serving its
   * database now (a psql call, ~30 ms of blocking: list them before a timed moment, not in it).
   */
  storePids(): number[];
  /** SIGTERM, then SIGKILL after `graceMs` (0: SIGKILL at once, for one that stopped answering). */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Subprocess>();
const dirs = new Set<string>();
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** `keepLogIn`: a folder the log is copied to when FerretDB exited on its own (a crash) before stop(). */
export async function startFerret(label = "ferretdb", keepLogIn?: string, handler: FerretHandler = "sqlite"): Promise<Ferret> {
  const bin = await ferretDbBinary();
  const dir = mkdtempSync(join(tmpdir(), `fleetcron-bench-${label}-`));
  dirs.add(dir);
  mkdirSync(join(dir, "data"));
  mkdirSync(join(dir, "state"));
  const port = await freePort();
  const debugPort = await freePort();
  const pgDb = handler === "pg" ? pgDbName(label) : undefined;
  if (pgDb) createPgDb(pgDb);
  // `postgresql` is the name FerretDB v1.24.2's --help gives its PostgreSQL handler (it also takes `pg`).
  const backend = pgDb ? ["--handler=postgresql", `--postgresql-url=${pgUrl(pgDb)}`] : ["--handler=sqlite", `--sqlite-url=file:${join(dir, "data")}/`];
  const logFd = openSync(join(dir, "ferretdb.log"), "a");
  const proc = Bun.spawn(
    [
      bin,
      ...backend,
      `--state-dir=${join(dir, "state")}`,
      `--listen-addr=127.0.0.1:${port}`,
      `--debug-addr=127.0.0.1:${debugPort}`,
      "--telemetry=disable",
      "--log-level=warn",
    ],
    { stdout: logFd, stderr: logFd, stdin: "ignore" },
  );
  closeSync(logFd);
  running.add(proc);
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      running.delete(proc);
      if (pgDb) dropPgDb(pgDb);
      throw new Error(`FerretDB (${handler}) did not start on 127.0.0.1:${port} (log: ${join(dir, "ferretdb.log")})`);
    }
    await Bun.sleep(50);
  }
  const metricsUrl = `http://127.0.0.1:${debugPort}/debug/metrics`;
  return {
    handler,
    ...(pgDb ? { pgDb } : {}),
    uri: `mongodb://127.0.0.1:${port}/`,
    pid: proc.pid,
    metricsUrl,
    async requests() {
      let text = "";
      try {
        text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
      } catch {
        process.stderr.write(`FerretDB (${label}, ${handler}): no answer from ${metricsUrl} in 5 s\n`);
      }
      const counts = new Map<string, number>();
      for (const line of text.split("\n")) {
        const m = /^ferretdb_client_requests_total\{([^}]*)\}\s+([\d.e+]+)/.exec(line);
        if (!m) continue;
        const command = /command="([^"]*)"/.exec(m[1]!)?.[1] ?? "?";
        counts.set(command, (counts.get(command) ?? 0) + Number(m[2]));
      }
      return counts;
    },
    async answers(timeoutMs = 5000) {
      const client = new MongoClient(`mongodb://127.0.0.1:${port}/`, { serverSelectionTimeoutMS: timeoutMs, socketTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
      try {
        await client.db("admin").command({ ping: 1 });
        return true;
      } catch {
        return false;
      } finally {
        await Promise.race([client.close(true), Bun.sleep(1000)]);
      }
    },
    storePids() {
      return [proc.pid, ...(pgDb ? pgBackendPids(pgDb) : [])];
    },
    async stop(graceMs = 5000) {
      if ((proc.exitCode !== null || proc.signalCode !== null) && keepLogIn) {
        const kept = join(keepLogIn, `ferretdb-${label}-exited-${Date.now()}.log`);
        copyFileSync(join(dir, "ferretdb.log"), kept);
        process.stderr.write(`FerretDB (${label}) had exited (${proc.exitCode ?? proc.signalCode}); its log: ${kept}\n`);
      }
      proc.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
      if (!exited) proc.kill("SIGKILL");
      await proc.exited;
      running.delete(proc);
      if (pgDb) dropPgDb(pgDb);
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}


/**
 * Waits (up to `capMs`) until the FerretDB process used under 5 % of a core over one second: it
 * keeps working through requests a killed agent left queued, so a measured case starts on a quiet
 * store. (With the PostgreSQL handler the work is shared with PostgreSQL's own processes.)
 */
export async function ferretQuiet(ferret: Ferret, capMs = 180_000): Promise<boolean> {
  const deadline = Date.now() + capMs;
  while (Date.now() < deadline) {
    const before = cpuSeconds(ferret.pid) ?? 0;
    await Bun.sleep(1000);
    if ((cpuSeconds(ferret.pid) ?? 0) - before < 0.05) return true;
  }
  return false;
}

/** CPU seconds used so far by each of these processes (gone ones left out). */
export function storeCpu(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (s !== null) out.set(pid, s);
  }
  return out;
}

/** CPU seconds between two `storeCpu()` snapshots (a backend that started in between counts whole). */
export function storeCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}
