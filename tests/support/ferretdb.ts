import { spawnSync, type Subprocess } from "bun";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { MongoClient } from "mongodb";

/**
 * A MongoDB-compatible server for tests: `MONGODB_URI` when set, else a throwaway
 * FerretDB v1 on 127.0.0.1 with its SQLite backend in a temp dir, built from the Go module proxy
 * the first time (scripts/install-ferretdb.sh).
 *
 * `uri` carries no database: every suite takes its own from `dbName()`, so suites can share one
 * external server without seeing each other's records.
 */
export interface TestMongo {
  kind: "ferretdb" | "external";
  /** Base connection string, no database in it. */
  uri: string;
  /** A database name no other caller gets. */
  dbName(prefix?: string): string;
  /** Ends it for good: FerretDB stops and its temp dir goes; on an external server the databases handed out are dropped. */
  stop(): Promise<void>;
  /** FerretDB only: SIGKILL now, as a crash would; data and port are kept for `restart()`. */
  kill?(): void;
  /** FerretDB only: graceful stop (SIGTERM, then SIGKILL after 5 s), keeping data and port for `restart()`. */
  shutdown?(): Promise<void>;
  /** FerretDB only: start again on the same port and data dir, after `kill()` or `shutdown()`. */
  restart?(): Promise<void>;
  /** FerretDB only: its log file, worth printing when a test fails. */
  logPath?: string;
}

export const FERRETDB_VERSION = "v1.24.2";

/**
 * For a test file that needs a server: started when the file loads. Without one, `mongo` is null
 * and `skipReason` says why (the tests are then reported skipped, never passed); in CI it throws.
 */
export async function startMongoForSuite(suite: string): Promise<{ mongo: TestMongo | null; skipReason: string }> {
  try {
    return { mongo: await startMongo(), skipReason: "" };
  } catch (error) {
    const why = (error as Error).message;
    if (process.env.CI) throw new Error(`the ${suite} must run in CI, but no MongoDB-wire server is available: ${why}`);
    console.warn(`SKIPPING the ${suite}: ${why}\n  Set MONGODB_URI, or run scripts/install-ferretdb.sh (needs Go).`);
    return { mongo: null, skipReason: ` — SKIPPED, no MongoDB-wire server: ${why.split("\n")[0]}` };
  }
}

export async function startMongo(): Promise<TestMongo> {
  const external = process.env.MONGODB_URI;
  // CI must prove the MongoDB-wire suites ran on FerretDB v1.24.2: an outside server
  // would replace it silently, so there it is an error rather than an alternative.
  if (external && process.env.CI) throw new Error(`MONGODB_URI is set in CI; the MongoDB-wire tests must run on FerretDB ${FERRETDB_VERSION}, not on ${external.replace(/\/\/[^@/]*@/, "//***@")}`);
  const server = external ? externalServer(external) : await startFerretDb(await ferretDbBinary());
  if (process.env.CI) {
    try {
      await assertFerretDbVersion(server.uri);
    } catch (error) {
      await server.stop();
      throw error;
    }
  }
  return server;
}

/** Asks the server itself what it is: `buildInfo.ferretdbVersion` must be FERRETDB_VERSION. */
export async function assertFerretDbVersion(uri: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const info = await client.db("admin").command({ buildInfo: 1 });
    if (info.ferretdbVersion !== FERRETDB_VERSION) {
      throw new Error(`the MongoDB-wire test server is not FerretDB ${FERRETDB_VERSION}: buildInfo reports ferretdbVersion ${JSON.stringify(info.ferretdbVersion)}, version ${JSON.stringify(info.version)}`);
    }
  } finally {
    await client.close();
  }
}

let counter = 0;
function uniqueDbName(prefix: string): string {
  // FerretDB v1 accepts only [A-Za-z0-9_-] in database names, at most 63 characters.
  const safe = prefix.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 30);
  return `${safe}_${process.pid}_${++counter}_${crypto.randomUUID().slice(0, 8)}`;
}

function externalServer(uri: string): TestMongo {
  const handedOut: string[] = [];
  return {
    kind: "external",
    uri,
    dbName(prefix = "fleetcron_test") {
      const name = uniqueDbName(prefix);
      handedOut.push(name);
      return name;
    },
    async stop() {
      if (handedOut.length === 0) return;
      const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000 });
      try {
        for (const name of handedOut.splice(0)) await client.db(name).dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The FerretDB binary

let binary: Promise<string> | undefined;

/** Path of a working FerretDB v1.24.2, installing it once per process when none is found. */
export function ferretDbBinary(): Promise<string> {
  binary ??= findOrInstall();
  return binary;
}

async function findOrInstall(): Promise<string> {
  const candidates = [process.env.FERRETDB_BIN, goBinDir() && join(goBinDir()!, "ferretdb"), join(homedir(), "go", "bin", "ferretdb")];
  for (const path of candidates) if (path && works(path)) return path;

  // `go install …@v1.24.2` alone yields a binary that panics at start (no version.txt in the
  // module), so a candidate can exist and still not work: the script rebuilds it properly.
  const script = join(import.meta.dir, "..", "..", "scripts", "install-ferretdb.sh");
  process.stderr.write(`FerretDB ${FERRETDB_VERSION} not found; building it with ${script} (a few minutes, once)\n`);
  const proc = Bun.spawn(["bash", script], { stdout: "pipe", stderr: "pipe", env: process.env });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const path = out.trim().split("\n").pop() ?? "";
  if (code !== 0 || !works(path)) {
    throw new Error(`FerretDB ${FERRETDB_VERSION} is not available and could not be built (exit ${code}):\n${err.trim()}`);
  }
  return path;
}

function goBinDir(): string | undefined {
  try {
    const gobin = spawnSync(["go", "env", "GOBIN"]).stdout.toString().trim();
    if (gobin) return gobin;
    const gopath = spawnSync(["go", "env", "GOPATH"]).stdout.toString().trim();
    return gopath ? join(gopath.split(":")[0]!, "bin") : undefined;
  } catch {
    return undefined; // no Go on PATH
  }
}

function works(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    const result = spawnSync([path, "--version"]);
    return result.exitCode === 0 && result.stdout.toString().includes(`version: ${FERRETDB_VERSION}`);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// A throwaway FerretDB process

const running = new Set<Subprocess>();
// A test run that dies mid-suite must not leave servers behind.
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
});

async function startFerretDb(bin: string): Promise<TestMongo> {
  const dir = mkdtempSync(join(tmpdir(), "fleetcron-ferretdb-"));
  const dataDir = join(dir, "data");
  const stateDir = join(dir, "state");
  mkdirSync(dataDir);
  mkdirSync(stateDir);

  let port = 0;
  let proc: Subprocess | undefined;
  let starts = 0;
  let logPath = join(dir, "ferretdb.log");

  const launch = async (): Promise<void> => {
    logPath = join(dir, `ferretdb-${++starts}.log`);
    // One append-mode descriptor for both streams, so neither truncates the other's lines.
    const log = openSync(logPath, "a");
    const child = Bun.spawn(
      [
        bin,
        "--handler=sqlite",
        `--sqlite-url=file:${dataDir}/`,
        `--state-dir=${stateDir}`,
        `--listen-addr=127.0.0.1:${port}`,
        // Without this every instance binds 127.0.0.1:8088 and the second one fails.
        "--debug-addr=-",
        // No outside connections from tests.
        "--telemetry=disable",
        "--log-level=warn",
      ],
      { stdout: log, stderr: log, stdin: "ignore" },
    );
    closeSync(log);
    proc = child;
    running.add(child);
    child.exited.then(() => running.delete(child));
    try {
      await waitForPort(port, child, 15_000);
    } catch (err) {
      child.kill("SIGKILL");
      await child.exited;
      throw new Error(`${(err as Error).message}\n--- ${logPath} ---\n${tail(logPath)}`);
    }
  };

  // A free port can be taken between our probe and FerretDB's bind; a few tries make that moot.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const halt = async (): Promise<void> => {
    const child = proc;
    if (!child) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      await child.exited;
      return;
    }
    child.kill("SIGTERM");
    const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(5_000).then(() => false)]);
    if (!exited) {
      child.kill("SIGKILL");
      await child.exited;
    }
  };

  return {
    kind: "ferretdb",
    uri: `mongodb://127.0.0.1:${port}/`,
    get logPath() {
      return logPath;
    },
    dbName: (prefix = "fleetcron_test") => uniqueDbName(prefix),
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    kill() {
      // The process is kept so `restart()` can wait for the port to be released.
      proc?.kill("SIGKILL");
    },
    shutdown: halt,
    async restart() {
      await halt();
      await launch();
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: Subprocess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`FerretDB exited (${child.exitCode ?? child.signalCode}) before accepting connections on 127.0.0.1:${port}`);
    }
    if (await canConnect(port)) return;
    await Bun.sleep(50);
  }
  throw new Error(`FerretDB did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
