/**
 * What one store operation costs on FerretDB v1.24 (SQLite handler) as a collection grows: the
 * per-occurrence operations of FleetCron's hot path, timed one at a time on 127.0.0.1.
 * Usage: bun bench/ferret-ops.ts [sizes, default 1000,5000,10000]
 */
import { MongoClient } from "mongodb";
import { startFerret } from "./lib/ferret.ts";
import { median, round } from "./lib/util.ts";

const sizes = (process.argv[2] ?? "1000,5000,10000").split(",").map(Number);
const ferret = await startFerret("ops");
const client = new MongoClient(ferret.uri);
await client.connect();
const col = client.db("ops").collection<{ _id: string } & Record<string, unknown>>("job_runs");
const doc = (i: number) => ({
  _id: `job${i % 100}@2026-01-01T00:00:${String(i).padStart(6, "0")}Z`,
  run_id: `r${i}`,
  job_id: `job${i % 100}`,
  job_name: `job ${i % 100}`,
  scheduled_for: new Date(),
  attempt: 1,
  trigger: "schedule",
  status: "running",
  machine_id: "m",
  claimed_at: new Date(),
  lease_until: new Date(),
});

async function time(times: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await op(i);
    samples.push(performance.now() - t0);
  }
  return round(median(samples), 2)!;
}

const rows: Record<string, unknown>[] = [];
let have = 0;
for (const size of sizes) {
  for (let i = have; i < size; i += 1000) await col.insertMany(Array.from({ length: Math.min(1000, size - i) }, (_, j) => doc(i + j)));
  have = size;
  const probe = (i: number) => doc((i * 7919) % size)._id;
  let extra = 0;
  rows.push({
    docs: size,
    "insertOne (claim)": await time(20, () => col.insertOne({ ...doc(1e7 + extra++), _id: `new-${size}-${extra}` })),
    "insertOne duplicate (lost claim)": await time(20, (i) => col.insertOne(doc((i * 13) % size)).catch(() => null)),
    "findOne {_id}": await time(20, (i) => col.findOne({ _id: probe(i) })),
    "updateOne {_id} $set": await time(10, (i) => col.updateOne({ _id: probe(i) }, { $set: { status: "success", finished_at: new Date() } })),
    "replaceOne {_id} upsert": await time(10, (i) => {
      const { _id, ...rest } = doc(0);
      return col.replaceOne({ _id: probe(i) }, rest, { upsert: true });
    }),
    "deleteOne {_id}": await time(10, (i) => col.deleteOne({ _id: `new-${size}-${i + 1}` })),
    "insertMany 100 (batched claims)": await time(5, (i) => col.insertMany(Array.from({ length: 100 }, (_, j) => ({ ...doc(0), _id: `batch-${size}-${i}-${j}` })), { ordered: false })),
  });
}
console.table(rows);
await client.close();
await ferret.stop();
