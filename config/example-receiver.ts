/**
 * A receiver for the example jobs (config/jobs.example.json), for a try-out on one machine:
 * `bun config/example-receiver.ts [PORT]` (default 8080, the example config's BASE_URL). It
 * answers every method on every path with 200 and a JSON body carrying a `token`, which the
 * `Weekday Sync` job's second step reads from its login step. It prints one line per request.
 */
const port = Number(process.argv[2] ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: bun config/example-receiver.ts [PORT]  (got "${process.argv[2]}")`);
  process.exit(2);
}
const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  async fetch(req) {
    const url = new URL(req.url);
    const body = await req.text();
    console.log(`${new Date().toISOString()} ${req.method} ${url.pathname}${url.search} ${req.headers.get("x-fleetcron-run-id") ?? ""}${body ? ` ${body.slice(0, 200)}` : ""}`);
    return Response.json({ ok: true, token: "example-token", path: url.pathname });
  },
});
console.log(`example receiver on http://127.0.0.1:${server.port}/ (every request answered 200); Ctrl-C stops it`);
