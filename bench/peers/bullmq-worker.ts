/**
 * Peer: one BullMQ worker process (npm `bullmq` 6 over `ioredis`) on the local Redis, under a key
 * prefix of the bench's own, sending the same GET to the same sink as FleetCron when a job of its
 * queue comes up. Settings come as JSON in BENCH_BULLMQ:
 *   { redis, prefix, name, sink, sys, queue, tight, concurrency?, path? }
 * The job schedulers (`upsertJobScheduler()`) are written by the bench beforehand (bench/lib/bullmq.ts).
 * `tight`: see bench/lib/bullmq-settings.ts. Prints "ready" on stdout once it works the queue.
 */
import { Worker, type Job } from "bullmq";
import { tightWorker } from "../lib/bullmq-settings.ts";
import type { BullmqSettings } from "../lib/peers.ts";

const s = JSON.parse(process.env.BENCH_BULLMQ ?? "{}") as BullmqSettings;
const url = new URL(s.redis);

// A scheduler's job is created delayed until its instant: timestamp + delay is that instant.
const instantOf = (job: Job) => (typeof job.data?.at === "number" ? job.data.at : job.timestamp + (job.opts.delay ?? 0));

const worker = new Worker(
  s.queue,
  async (job: Job) => {
    const id = typeof job.data?.i === "number" ? `b${job.data.i}` : (job.repeatJobKey ?? job.name);
    const res = await fetch(`${s.sink}/${s.path ?? "bullmq"}?sys=${s.sys}&m=${s.name}&job=${encodeURIComponent(id)}&at=${instantOf(job)}&attempt=${job.attemptsStarted}`);
    await res.arrayBuffer();
  },
  {
    connection: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null },
    prefix: s.prefix,
    ...(s.tight ? tightWorker : {}),
    ...(s.concurrency ? { concurrency: s.concurrency } : {}),
  },
);
worker.on("error", (err: unknown) => process.stderr.write(`bullmq error: ${String(err)}\n`));
await worker.waitUntilReady();
process.stdout.write("ready\n");

const stop = async () => {
  await worker.close(true).catch(() => {});
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
