/** A local HTTP sink on 127.0.0.1 that records every delivery, keyed by FleetCron's run id. */
export interface Delivery {
  runId: string;
  idempotencyKey: string | null;
  path: string;
  query: Record<string, string>;
  arrivedAt: number;
  body: string;
  headers: Record<string, string>;
}

export interface Sink {
  url: string;
  deliveries: Delivery[];
  /** Deliveries per run id: exactly-once means every value is 1. */
  countsByRunId(): Map<string, number>;
  stop(): Promise<void>;
}

export function startSink(options: { delayMs?: (req: Request) => number; status?: (req: Request) => number } = {}): Sink {
  const deliveries: Delivery[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 255,
    async fetch(req) {
      const arrivedAt = Date.now();
      const url = new URL(req.url);
      const body = await req.text();
      deliveries.push({
        runId: req.headers.get("x-fleetcron-run-id") ?? "",
        idempotencyKey: req.headers.get("idempotency-key"),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        arrivedAt,
        body,
        headers: Object.fromEntries(req.headers),
      });
      const delay = options.delayMs?.(req) ?? 0;
      if (delay > 0) await Bun.sleep(delay);
      return new Response(JSON.stringify({ ok: true, n: deliveries.length }), { status: options.status?.(req) ?? 200, headers: { "content-type": "application/json" } });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    deliveries,
    countsByRunId() {
      const counts = new Map<string, number>();
      for (const d of deliveries) counts.set(d.runId, (counts.get(d.runId) ?? 0) + 1);
      return counts;
    },
    async stop() {
      await server.stop(true);
    },
  };
}
