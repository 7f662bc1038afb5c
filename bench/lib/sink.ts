import { nowMs } from "./util.ts";

/**
 * The local HTTP sink every scheduler under test calls (127.0.0.1 only). It timestamps each arrival
 * the moment the request reaches its handler (wall clock, ms).
 *
 * Scheduled instants come from FleetCron's run id (`X-FleetCron-Run-Id: <job>@<ISO instant>`) or,
 * for the peers, from an `at=<epoch ms>` query parameter. `sys` names the system under test and `m`
 * the machine (agent or worker) that sent the request.
 */
export interface Arrival {
  sys: string;
  machine: string;
  /** Occurrence key: FleetCron's run id, or `<sys>:<job>@<at>` for the peers. */
  key: string;
  scheduled: number;
  arrived: number;
  path: string;
}

export interface Sink {
  url: string;
  arrivals: Arrival[];
  /** Arrivals of one system, in arrival order. */
  of(sys: string): Arrival[];
  count(sys: string): number;
  clear(sys?: string): void;
  stop(): Promise<void>;
}

export function startSink(options: { slowMs?: number } = {}): Sink {
  let arrivals: Arrival[] = [];
  const bySys = new Map<string, Arrival[]>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 255,
    async fetch(req) {
      const arrived = nowMs();
      const url = new URL(req.url);
      const sys = url.searchParams.get("sys") ?? "unknown";
      const runId = req.headers.get("x-fleetcron-run-id");
      const at = url.searchParams.get("at");
      let scheduled = NaN;
      let key: string;
      if (runId) {
        key = runId;
        scheduled = Date.parse(runId.split("@")[1]?.split("!")[0] ?? "");
      } else {
        scheduled = Number(at);
        key = `${sys}:${url.searchParams.get("job") ?? ""}@${at}`;
      }
      const arrival: Arrival = { sys, machine: url.searchParams.get("m") ?? "", key, scheduled, arrived, path: url.pathname };
      arrivals.push(arrival);
      let list = bySys.get(sys);
      if (!list) bySys.set(sys, (list = []));
      list.push(arrival);
      if (url.pathname === "/slow" && options.slowMs) await Bun.sleep(options.slowMs);
      return new Response("ok");
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    get arrivals() {
      return arrivals;
    },
    of: (sys) => bySys.get(sys) ?? [],
    count: (sys) => bySys.get(sys)?.length ?? 0,
    clear(sys) {
      if (sys === undefined) {
        arrivals = [];
        bySys.clear();
      } else {
        bySys.delete(sys);
        arrivals = arrivals.filter((a) => a.sys !== sys);
      }
    },
    async stop() {
      await server.stop(true);
    },
  };
}

/**
 * Deliveries per agent, in the fleet's agent order (a/b/c), zeros included: `34/33/33`. The agent
 * is the `m` query parameter, which each agent fills from its own `{{machine_id}}`; arrivals from
 * a machine not in the list (or with none) are added as `+N other`.
 */
export function perAgent(arrivals: Arrival[], machineIds: string[]): { counts: number[]; text: string; other: number } {
  const counts = machineIds.map(() => 0);
  let other = 0;
  for (const a of arrivals) {
    const i = machineIds.indexOf(a.machine);
    if (i >= 0) counts[i]!++;
    else other++;
  }
  return { counts, other, text: `${counts.join("/")}${other ? ` +${other} other` : ""}` };
}
