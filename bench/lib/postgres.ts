/**
 * The PostgreSQL that FerretDB's `postgresql` handler runs on (127.0.0.1:5432, trust auth, on these
 * machines). The bench only ever creates and drops databases of its own, named
 * `fleetcron_bench_<pid>_<label>`; it connects to the existing `test` database to do so and never
 * touches any other.
 */
export const PG_HOST = process.env.BENCH_PG_HOST ?? "127.0.0.1";
export const PG_PORT = Number(process.env.BENCH_PG_PORT ?? 5432);
export const PG_USER = process.env.BENCH_PG_USER ?? "postgres";
export const ADMIN_DB = process.env.BENCH_PG_ADMIN_DB ?? "test";

/** Databases this process created and has not dropped yet (dropped on exit, also after a failure). */
const created = new Set<string>();

/** Runs one statement with psql on the admin database (`test`). */
export function psql(sql: string): { ok: boolean; out: string } {
  try {
    const r = Bun.spawnSync(["psql", "-h", PG_HOST, "-p", String(PG_PORT), "-U", PG_USER, "-d", ADMIN_DB, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-t", "-c", sql], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
    });
    return { ok: r.exitCode === 0, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
  } catch (error) {
    return { ok: false, out: String(error) }; // no psql on PATH
  }
}

/** Why the bench cannot use PostgreSQL here, or null when it can. */
export function pgUnavailable(): string | null {
  const r = psql("SELECT 1");
  return r.ok ? null : `PostgreSQL at ${PG_USER}@${PG_HOST}:${PG_PORT}/${ADMIN_DB} not reachable with psql: ${r.out.split("\n")[0]}`;
}

export function pgServerVersion(): string {
  const r = psql("SHOW server_version");
  return r.ok ? r.out.split(" ")[0]! : "?";
}

/** PostgreSQL server processes serving a database (FerretDB's pool), for their CPU time. */
export function pgBackendPids(db: string): number[] {
  if (!/^[a-z0-9_]+$/.test(db)) return [];
  const r = psql(`SELECT pid FROM pg_stat_activity WHERE datname = '${db}'`);
  return r.ok ? r.out.split("\n").map((l) => Number(l.trim())).filter((n) => n > 0) : [];
}

export function pgDbName(label: string): string {
  return `fleetcron_bench_${process.pid}_${label}`.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 63);
}

export function createPgDb(name: string): void {
  if (!/^fleetcron_bench_[a-z0-9_]+$/.test(name)) throw new Error(`refusing to create PostgreSQL database "${name}": not a bench name`);
  const r = psql(`CREATE DATABASE ${name}`);
  if (!r.ok) throw new Error(`CREATE DATABASE ${name} failed: ${r.out}`);
  created.add(name);
}

export function dropPgDb(name: string): void {
  if (!created.has(name)) return; // only what this process created
  const r = psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  if (r.ok) created.delete(name);
  else process.stderr.write(`DROP DATABASE ${name} failed: ${r.out}\n`);
}

export function pgUrl(db: string): string {
  return `postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${db}`;
}

process.on("exit", () => {
  for (const name of [...created]) dropPgDb(name);
});
