import { Queue } from "bullmq";

/**
 * BullMQ's side of the bench: each case works under a Redis key prefix of its own,
 * `fcbench:<pid>:<label>`, and deletes every key under it when done (also on exit after a failure).
 * No other key of the Redis is read or written.
 */
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

const created = new Set<string>();

export function bullmqPrefix(label: string): string {
  return `fcbench:${process.pid}:${label.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

function redisCli(args: string[]): { ok: boolean; out: string } {
  const url = new URL(REDIS_URL);
  try {
    const r = Bun.spawnSync(["redis-cli", "-h", url.hostname, "-p", url.port || "6379", ...args], { stdout: "pipe", stderr: "pipe" });
    return { ok: r.exitCode === 0, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
  } catch (error) {
    return { ok: false, out: String(error) }; // no redis-cli on PATH
  }
}

/** Why the bench cannot use Redis here, or null when it can. */
export function redisUnavailable(): string | null {
  const r = redisCli(["ping"]);
  return r.ok && r.out === "PONG" ? null : `Redis at ${REDIS_URL} does not answer redis-cli ping: ${r.out.split("\n")[0] || "no reply"}`;
}

export function redisServerVersion(): string {
  return /redis_version:(\S+)/.exec(redisCli(["info", "server"]).out)?.[1] ?? "?";
}

/** Deletes every key under a prefix this process used. */
export function dropBullmqPrefix(prefix: string): void {
  if (!created.has(prefix)) return;
  const keys = redisCli(["--scan", "--pattern", `${prefix}:*`]).out.split("\n").filter(Boolean);
  for (let i = 0; i < keys.length; i += 500) redisCli(["unlink", ...keys.slice(i, i + 500)]);
  created.delete(prefix);
}

process.on("exit", () => {
  for (const prefix of [...created]) dropBullmqPrefix(prefix);
});

export interface BullmqScheduler {
  id: string;
  pattern?: string;
  every?: number;
  data?: Record<string, unknown>;
}

export function bullmqQueue(prefix: string, name: string): Queue {
  if (!prefix.startsWith("fcbench:")) throw new Error(`refusing to use Redis prefix "${prefix}": not a bench prefix`);
  created.add(prefix);
  const url = new URL(REDIS_URL);
  return new Queue(name, { connection: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null }, prefix });
}

/** Writes job schedulers (`upsertJobScheduler()`), 50 at a time. */
export async function setupBullmq(prefix: string, queue: string, schedulers: BullmqScheduler[]): Promise<void> {
  const q = bullmqQueue(prefix, queue);
  try {
    for (let i = 0; i < schedulers.length; i += 50) {
      await Promise.all(
        schedulers.slice(i, i + 50).map((s) => q.upsertJobScheduler(s.id, s.pattern ? { pattern: s.pattern, tz: "UTC" } : { every: s.every! }, { name: "ping", data: s.data ?? {}, opts: { removeOnComplete: 1000 } })),
      );
    }
  } finally {
    await q.close();
  }
}

/** Adds one job now (the mid-run kill's long request). */
export async function addBullmqJob(prefix: string, queue: string, data: Record<string, unknown>): Promise<void> {
  const q = bullmqQueue(prefix, queue);
  try {
    await q.add("slow", data);
  } finally {
    await q.close();
  }
}

/** The Redis server's process id (for its CPU time), or null. */
export function redisServerPid(): number | null {
  const pid = Number(/process_id:(\d+)/.exec(redisCli(["info", "server"]).out)?.[1]);
  return pid > 0 ? pid : null;
}
