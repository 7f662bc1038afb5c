import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openMongoStore } from "../../src/store/mongo.ts";
import type { Store } from "../../src/store/types.ts";
import { makeHome, runCli, startAgent, type AgentProcess, type TestHome } from "../support/cli.ts";
import { startMongoForSuite } from "../support/ferretdb.ts";

/**
 * The fencing guarantee (docs/protocol.md, "Liveness and the fence") with real processes: agent a
 * reaches the store through a TCP proxy the test can black-hole (bytes dropped both ways, sockets
 * left open — a cut-off link, not a refused one), and keeps reaching its target. Once a's heartbeat
 * is no longer confirmed it must stop writing to the target and close its connection before
 * attempt 2 of that occurrence arrives from b. Then the same with a frozen agent (SIGSTOP past
 * dead_after_sec). The target records each request's arrival and the moment its client closed it.
 */
const SECOND = 1000;

const { mongo, skipReason } = await startMongoForSuite("fencing tests");

interface Arrival {
  machine: string;
  runId: string;
  attempt: number;
  arrivedAt: number;
  closedAt: number | null;
}

/** A target whose requests never answer: it records when each arrived and when its client hung up. */
function startHangingTarget() {
  const arrivals: Arrival[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const arrival: Arrival = {
        machine: url.searchParams.get("m") ?? "",
        runId: req.headers.get("x-fleetcron-run-id") ?? "",
        attempt: Number(url.searchParams.get("attempt")),
        arrivedAt: Date.now(),
        closedAt: null,
      };
      arrivals.push(arrival);
      await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve(), { once: true }));
      arrival.closedAt = Date.now();
      return new Response("never read");
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, arrivals, stop: () => server.stop(true) };
}

/** A TCP proxy to the store; `blackHole(true)` drops every byte both ways while keeping the sockets open. */
function startProxy(target: { host: string; port: number }) {
  let dropping = false;
  const pairs = new Set<{ client: Socket<unknown>; upstream: Socket<unknown> | null; pending: Uint8Array[] }>();
  const server = Bun.listen<{ pair: { client: Socket<unknown>; upstream: Socket<unknown> | null; pending: Uint8Array[] } }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      async open(client) {
        const pair = { client: client as Socket<unknown>, upstream: null as Socket<unknown> | null, pending: [] as Uint8Array[] };
        client.data = { pair };
        pairs.add(pair);
        pair.upstream = (await Bun.connect({
          hostname: target.host,
          port: target.port,
          socket: {
            data(_s, bytes) {
              if (!dropping) client.write(bytes);
            },
            close() {
              client.end();
            },
          },
        })) as Socket<unknown>;
        for (const chunk of pair.pending) pair.upstream.write(chunk);
        pair.pending = [];
      },
      data(client, bytes) {
        if (dropping) return;
        const { pair } = client.data;
        if (pair.upstream) pair.upstream.write(bytes);
        else pair.pending.push(new Uint8Array(bytes));
      },
      close(client) {
        client.data?.pair.upstream?.end();
        pairs.delete(client.data?.pair);
      },
    },
  });
  return {
    port: server.port,
    blackHole(on: boolean) {
      dropping = on;
    },
    stop() {
      for (const pair of pairs) pair.upstream?.end(), pair.client.end();
      server.stop(true);
    },
  };
}

describe.skipIf(!mongo)(`fencing with real agents${skipReason}`, () => {
  let target: ReturnType<typeof startHangingTarget>;
  let proxy: ReturnType<typeof startProxy>;
  let store: Store;
  const homes: TestHome[] = [];
  const agents: AgentProcess[] = [];

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop("SIGKILL")));
    proxy?.stop();
    await target?.stop();
    await store?.close();
    await mongo?.stop();
    for (const home of homes) home.cleanup();
  }, 60_000);

  async function fleet(dbName: string) {
    const url = new URL(mongo!.uri.replace("mongodb://", "http://"));
    proxy?.stop();
    proxy = startProxy({ host: url.hostname, port: Number(url.port) });
    store = await openMongoStore({ uri: mongo!.uri, dbName });
    const common = { db_name: dbName, tz: "UTC", placement: "serial", heartbeat_sec: 0.5, dead_after_sec: 3, failover_step_sec: 1, secrets: { TARGET: target.url } };
    const a = makeHome({ ...common, machine_id: "a", mongodb_uri: mongo!.uri.replace(`:${url.port}`, `:${proxy.port}`) }, "fleetcron-fence-a");
    const b = makeHome({ ...common, machine_id: "b", mongodb_uri: mongo!.uri }, "fleetcron-fence-b");
    homes.push(a, b);
    const agentA = startAgent(a, "a");
    await agentA.waitForLog("running: serial 1", 30_000);
    const agentB = startAgent(b, "b");
    await agentB.waitForLog("running: serial", 30_000);
    agents.push(agentA, agentB);
    // One occurrence a few seconds from now, fired by a (serial 1); its request never answers.
    const at = new Date(Math.ceil((Date.now() + 4 * SECOND) / SECOND) * SECOND);
    const jobsFile = join(a.dir, "jobs.json");
    const cron = `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
    writeFileSync(jobsFile, JSON.stringify([{ name: "hang", cron, timeout_sec: 600, url: "{{TARGET}}/hang?m={{machine_id}}&attempt={{attempt}}" }]));
    expect((await runCli(a, ["jobs", "apply", jobsFile])).exitCode).toBe(0);
    return { agentA, agentB, at: at.getTime() };
  }

  async function until(check: () => boolean, timeoutMs: number, what: string) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (check()) return;
      await Bun.sleep(50);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(target.arrivals)}`);
  }

  test("an agent cut off from the store alone closes its request before attempt 2 arrives, and sends nothing after", async () => {
    target = startHangingTarget();
    const { at } = await fleet(mongo!.dbName("fence-cut"));
    await until(() => target.arrivals.some((r) => r.machine === "a"), 15_000, "attempt 1 from a");
    const first = target.arrivals.find((r) => r.machine === "a")!;
    expect(first.attempt).toBe(1);
    proxy.blackHole(true);
    const cutAt = Date.now();
    await until(() => target.arrivals.some((r) => r.machine === "b"), 20_000, "attempt 2 from b");
    const second = target.arrivals.find((r) => r.machine === "b")!;
    console.log(`cut-off agent: request closed ${first.closedAt! - cutAt} ms after the cut; attempt 2 arrived ${second.arrivedAt - cutAt} ms after it`);
    expect(second.runId).toBe(first.runId);
    expect(second.attempt).toBe(2);
    expect(first.closedAt).not.toBeNull();
    expect(first.closedAt!).toBeLessThan(second.arrivedAt);
    // Takeover within dead_after_sec (3 s) plus a second of the cut.
    expect(second.arrivedAt - cutAt).toBeLessThan(3 * SECOND + SECOND + 1500);
    // Healed after more than dead_after_sec: a writes no further byte for that occurrence.
    proxy.blackHole(false);
    await Bun.sleep(4 * SECOND);
    expect(target.arrivals.filter((r) => r.machine === "a" && r.runId === first.runId)).toHaveLength(1);
    const records = await store.getRuns([first.runId, `${first.runId}#2`, `${first.runId}#3`]);
    expect(records.map((r) => [r.attempt, r.status]).sort()).toEqual([
      [1, "lost"],
      [2, "running"],
    ]);
    expect(at).toBe(Date.parse(first.runId.split("@")[1]!));
  }, 90_000);

  test("a frozen agent (SIGSTOP past dead_after_sec) sends nothing more for the attempt taken over while it was frozen", async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop("SIGKILL")));
    await target.stop();
    target = startHangingTarget();
    const { agentA } = await fleet(mongo!.dbName("fence-stop"));
    await until(() => target.arrivals.some((r) => r.machine === "a"), 15_000, "attempt 1 from a");
    const first = target.arrivals.find((r) => r.machine === "a")!;
    agentA.proc.kill("SIGSTOP");
    try {
      await until(() => target.arrivals.some((r) => r.machine === "b"), 20_000, "attempt 2 from b");
    } finally {
      agentA.proc.kill("SIGCONT");
    }
    await Bun.sleep(3 * SECOND);
    // Thawed, a finds its fence deadline long past: it closes its request and sends nothing new.
    expect(target.arrivals.filter((r) => r.machine === "a")).toHaveLength(1);
    expect(first.closedAt).not.toBeNull();
    const record = await store.getRun(first.runId);
    expect(record?.status).toBe("lost");
  }, 90_000);
});
