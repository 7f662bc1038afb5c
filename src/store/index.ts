import type { Store } from "./types.ts";

export type StoreTarget = { kind: "sqlite"; path: string } | { kind: "mongo"; uri: string; dbName: string };

/**
 * Opens the configured backend. The MongoDB driver is imported only when a fleet store is
 * configured, so the embedded path never pays for loading it (literal specifier: the compiled
 * binary still bundles it).
 */
export async function openStore(target: StoreTarget, options: { waitForServerMs?: number } = {}): Promise<Store> {
  if (target.kind === "sqlite") {
    const { openSqliteStore } = await import("./sqlite.ts");
    return openSqliteStore(target.path);
  }
  const { openMongoStore } = await import("./mongo.ts");
  return openMongoStore({ uri: target.uri, dbName: target.dbName, ...(options.waitForServerMs ? { serverSelectionTimeoutMS: options.waitForServerMs } : {}) });
}
