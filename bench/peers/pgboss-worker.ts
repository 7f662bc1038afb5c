/**
 * Peer: one pg-boss worker process (npm `pg-boss` 12) on the local PostgreSQL, in a schema of the
 * bench's own, sending the same GET to the same sink as FleetCron when a job of its queue comes up.
 * Settings come as JSON in BENCH_PGBOSS:
 *   { url, schema, name, sink, sys, queue, tight, max?, path? }
 * The schedules (`schedule()`) and the queue are written by the bench beforehand (bench/lib/pgboss.ts);
 * every worker runs pg-boss's cron pass too (whichever instance claims a pass sends the occurrences),
 * as every instance of a pg-boss deployment does by default.
 * `tight` = the documented knobs for timing: cron pass and cron worker every 1 s (their minimum),
 * LISTEN/NOTIFY wake-ups, a 0.5 s poll (the minimum), batches of 50 with burst fetching, and a
 * supervise/monitor pass every second (so a job whose heartbeat stopped is retried after
 * `heartbeatSeconds`). Otherwise pg-boss's defaults.
 * Prints "ready" on stdout once it works the queue.
 */
import { PgBoss } from "pg-boss";
import { tightWork, tightInstance } from "../lib/pgboss-settings.ts";
import type { PgbossSettings } from "../lib/peers.ts";

const s = JSON.parse(process.env.BENCH_PGBOSS ?? "{}") as PgbossSettings;
const MINUTE = 60_000;

const boss = new PgBoss({ connectionString: s.url, schema: s.schema, application_name: s.name, ...(s.max ? { max: s.max } : {}), ...(s.tight ? tightInstance : {}) });
boss.on("error", (err: unknown) => process.stderr.write(`pg-boss error: ${String(err)}\n`));

interface Data {
  /** A one-shot job's instant (epoch ms) or a schedule's index. */
  at?: number;
  i?: number;
}

// A cron occurrence is filed in the minute it falls in (pg-boss's slot is 60 s wide): its instant is
// the start of the minute the job was created in, which the cron pass does within that minute.
const instantOf = (job: { data: Data; createdOn?: Date }) =>
  typeof job.data?.at === "number" ? job.data.at : Math.floor(new Date(job.createdOn ?? Date.now()).getTime() / MINUTE) * MINUTE;

await boss.start();
await boss.work<Data>(s.queue, { ...(s.tight ? tightWork : {}), includeMetadata: true }, async (jobs) => {
  await Promise.all(
    jobs.map(async (job) => {
      const at = instantOf(job as { data: Data; createdOn?: Date });
      const id = typeof job.data?.i === "number" ? `b${job.data.i}` : "tick";
      const res = await fetch(`${s.sink}/${s.path ?? "pgboss"}?sys=${s.sys}&m=${s.name}&job=${id}&at=${at}&retry=${(job as { retryCount?: number }).retryCount ?? 0}`);
      await res.arrayBuffer();
    }),
  );
});
process.stdout.write("ready\n");

const stop = async () => {
  await boss.stop({ graceful: false, close: true }).catch(() => {});
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
