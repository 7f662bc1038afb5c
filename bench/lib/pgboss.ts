import { PgBoss } from "pg-boss";
import { ADMIN_DB, pgUrl, psql } from "./postgres.ts";
import { tightQueue } from "./pgboss-settings.ts";

/**
 * pg-boss's side of the bench: each case installs pg-boss into a PostgreSQL schema of its own in the
 * existing `test` database, named `fcbench_<pid>_<label>`, and drops it (CASCADE) when done, also on
 * exit after a failure. Nothing else in that database is touched.
 */
export const pgbossUrl = () => pgUrl(ADMIN_DB);

const created = new Set<string>();

export function pgbossSchema(label: string): string {
  return `fcbench_${process.pid}_${label}`.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 63);
}

export function dropPgbossSchema(schema: string): void {
  if (!created.has(schema)) return; // only what this process created
  const r = psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  if (r.ok) created.delete(schema);
  else process.stderr.write(`DROP SCHEMA ${schema} failed: ${r.out}\n`);
}

process.on("exit", () => {
  for (const schema of [...created]) dropPgbossSchema(schema);
});

export interface PgbossSchedule {
  cron: string;
  key?: string;
  data?: Record<string, unknown>;
}

/**
 * Installs pg-boss into a fresh schema, creates the queue and writes the schedules (`schedule()`),
 * from an instance that neither supervises nor runs cron passes: the workers do that.
 */
export async function setupPgboss(schema: string, queue: string, tight: boolean, schedules: PgbossSchedule[]): Promise<void> {
  if (!/^fcbench_[a-z0-9_]+$/.test(schema)) throw new Error(`refusing to install pg-boss into schema "${schema}": not a bench name`);
  created.add(schema);
  const boss = new PgBoss({ connectionString: pgbossUrl(), schema, supervise: false, schedule: false, max: 4 });
  boss.on("error", (err: unknown) => process.stderr.write(`pg-boss (setup) error: ${String(err)}\n`));
  await boss.start();
  try {
    await boss.createQueue(queue, tight ? tightQueue : {});
    for (let i = 0; i < schedules.length; i += 50) {
      await Promise.all(schedules.slice(i, i + 50).map((s) => boss.schedule(queue, s.cron, s.data ?? {}, { tz: "UTC", ...(s.key ? { key: s.key } : {}) })));
    }
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
}

/** Sends one job now (the mid-run kill's long request). */
export async function sendPgbossJob(schema: string, queue: string, data: Record<string, unknown>): Promise<void> {
  const boss = new PgBoss({ connectionString: pgbossUrl(), schema, supervise: false, schedule: false, max: 2 });
  boss.on("error", () => {});
  await boss.start();
  try {
    await boss.send(queue, data);
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
}

/** PostgreSQL server processes serving workers whose application_name starts with `prefix` (for their CPU time). */
export function pgbossBackendPids(prefix: string): number[] {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) return [];
  const r = psql(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE '${prefix}%'`);
  return r.ok ? r.out.split("\n").map((l) => Number(l.trim())).filter((n) => n > 0) : [];
}
