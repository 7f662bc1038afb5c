/**
 * Peer: one Agenda worker process (npm `agenda` + `@agendajs/mongo-backend`) on the same FerretDB
 * and the same sink as FleetCron. Settings come as JSON in BENCH_AGENDA:
 *   { uri, db, name, sink, sys, processEvery, lockLifetime?, concurrency?, maxConcurrency?, recurring? }
 * `recurring` (a 6-field cron) makes this worker create one repeating job `ping`; otherwise it only
 * processes `ping` jobs the bench wrote (one-shot, `data.at` = the scheduled instant).
 * Prints "ready" on stdout once it processes jobs.
 */
import { Agenda, Job } from "agenda";
import { MongoBackend } from "@agendajs/mongo-backend";

interface Settings {
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

const s = JSON.parse(process.env.BENCH_AGENDA ?? "{}") as Settings;

// The instant a run was due: Agenda moves `nextRunAt` to the next one before calling the handler,
// so it is captured on the way in.
const scheduledOf = new WeakMap<object, number>();
const originalRun = Job.prototype.run;
Job.prototype.run = function (this: Job) {
  const due = this.attrs.nextRunAt ? new Date(this.attrs.nextRunAt).getTime() : Date.now();
  scheduledOf.set(this.attrs, due);
  return originalRun.call(this);
};

const agenda = new Agenda({
  backend: new MongoBackend({ address: `${s.uri.replace(/\/$/, "")}/${s.db}` }),
  name: s.name,
  processEvery: s.processEvery,
  ...(s.lockLifetime ? { defaultLockLifetime: s.lockLifetime } : {}),
  ...(s.concurrency ? { defaultConcurrency: s.concurrency } : {}),
  ...(s.maxConcurrency ? { maxConcurrency: s.maxConcurrency } : {}),
});

agenda.define("ping", async (job: Job) => {
  const data = (job.attrs.data ?? {}) as { at?: number };
  const at = typeof data.at === "number" ? data.at : (scheduledOf.get(job.attrs) ?? Date.now());
  const res = await fetch(`${s.sink}/agenda?sys=${s.sys}&m=${s.name}&job=${job.attrs._id}&at=${at}`);
  await res.arrayBuffer();
});
agenda.on("error", (err: unknown) => process.stderr.write(`agenda error: ${String(err)}\n`));

await agenda.start();
if (s.recurring) await agenda.every(s.recurring, "ping", {}, { timezone: "UTC", skipImmediate: true });
process.stdout.write("ready\n");

const stop = async () => {
  await agenda.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
