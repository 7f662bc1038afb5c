import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A counting TCP proxy between one agent and FerretDB (127.0.0.1 only). It forwards bytes both ways
 * untouched and reads the MongoDB wire messages the agent sends: for each, the time it passed
 * (Date.now(), the clock the sink stamps arrivals with), the command (the first key of an OP_MSG's
 * body) and the collection it names. With one proxy per agent the bench knows which agent sent
 * which request, and so how many store requests an agent made between an occurrence's instant and
 * that occurrence's HTTP request.
 */
export interface WireEvent {
  t: number;
  command: string;
  collection?: string;
}

export interface WireProxy {
  port: number;
  uri: string;
  events: WireEvent[];
  stop(): Promise<void>;
}

/** Driver housekeeping (server monitoring, handshakes, session ends): not FleetCron's own requests. */
export const DRIVER_COMMANDS = new Set(["hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "buildinfo", "saslStart", "saslContinue", "OP_QUERY"]);

const OP_MSG = 2013;
const OP_QUERY = 2004;

/** The command of one client message: OP_MSG section 0's first key (and its value, the collection). */
function parse(msg: Buffer): { command: string; collection?: string } {
  const opCode = msg.readInt32LE(12);
  if (opCode === OP_QUERY) return { command: "OP_QUERY" };
  if (opCode !== OP_MSG) return { command: `op${opCode}` };
  let at = 20; // header (16) + flagBits (4)
  while (at < msg.length) {
    const kind = msg[at]!;
    at++;
    if (kind === 0) {
      const doc = at;
      const type = msg[doc + 4]!;
      const keyEnd = msg.indexOf(0, doc + 5);
      const command = msg.toString("utf8", doc + 5, keyEnd);
      let collection: string | undefined;
      if (type === 0x02) {
        const len = msg.readInt32LE(keyEnd + 1);
        collection = msg.toString("utf8", keyEnd + 5, keyEnd + 4 + len);
      }
      return { command, collection };
    }
    // kind 1: a document sequence (size includes itself); skip it and look for the body.
    at += msg.readInt32LE(at);
  }
  return { command: "?" };
}

export async function startWireProxy(targetPort: number, db?: string): Promise<WireProxy> {
  const events: WireEvent[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    let pending: Buffer = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 16) {
        const size = pending.readInt32LE(0);
        if (pending.length < size) break;
        try {
          events.push({ t: Date.now(), ...parse(pending.subarray(0, size)) });
        } catch {
          events.push({ t: Date.now(), command: "?" });
        }
        pending = pending.subarray(size);
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    uri: `mongodb://127.0.0.1:${port}/${db ?? ""}`,
    events,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Requests that are FleetCron's (driver housekeeping left out), by `command collection`. */
export function byCommand(events: WireEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) {
    const key = e.collection ? `${e.command} ${e.collection}` : e.command;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
