import { join } from "node:path";
import type { Context } from "./context.ts";
import { startFerret, type Ferret } from "./ferret.ts";
import type { StoreSpec } from "./fleetcron.ts";
import { log } from "./util.ts";

/**
 * The stores a FleetCron row can run on: the embedded SQLite file, and FerretDB v1.24.2 with its
 * SQLite handler or its PostgreSQL handler. The two FerretDB rows run the same FleetCron code over
 * the same wire protocol, so their difference is FerretDB's backend; SQLite against either is
 * FleetCron's cost of a networked store.
 */
export type StoreKind = "sqlite" | "ferretdb" | "ferretdb-pg";

export const STORE_LABEL: Record<StoreKind, string> = { sqlite: "SQLite", ferretdb: "FerretDB-sqlite", "ferretdb-pg": "FerretDB-pg" };

/** The label of a row's store, also for results written before the PostgreSQL rows existed. */
export function storeLabel(store: string): string {
  if (store in STORE_LABEL) return STORE_LABEL[store as StoreKind];
  return store === "FerretDB" ? STORE_LABEL.ferretdb : store;
}

/** The shared FerretDB of a kind in this run (null: that store is not in the run). */
export function ferretOf(ctx: Context, kind: StoreKind): Ferret | null {
  return kind === "ferretdb" ? ctx.ferret : kind === "ferretdb-pg" ? ctx.ferretPg : null;
}

/** A fresh store of that kind: a new SQLite file under the run's temp dir, or a new FerretDB database. */
export function freshStore(ctx: Context, kind: StoreKind, name: string, ferret = ferretOf(ctx, kind)): StoreSpec {
  if (kind === "sqlite") return { kind: "sqlite", path: join(ctx.tmp, `${name}.db`) };
  if (!ferret) throw new Error(`store ${kind} is not in this run`);
  return { kind: "mongo", uri: ferret.uri, db: ctx.db(name) };
}

/** The FerretDB kinds this run has (the PostgreSQL one only when PostgreSQL was reachable). */
export function ferretKinds(ctx: Context): StoreKind[] {
  return ctx.ferretPg ? ["ferretdb", "ferretdb-pg"] : ["ferretdb"];
}

/**
 * The run's FerretDB of that kind, replaced by a fresh one (new process, new PostgreSQL database)
 * when it no longer answers a ping: FerretDB-pg has been seen to stop answering, /debug/metrics
 * included, after agents with requests in flight were killed. Returns whether it was replaced.
 */
export async function ensureFerret(ctx: Context, kind: StoreKind): Promise<boolean> {
  const ferret = ferretOf(ctx, kind);
  if (!ferret || (await ferret.answers(3000))) return false;
  log(`${STORE_LABEL[kind]} does not answer a ping in 3 s; replacing it with a fresh FerretDB`);
  await ferret.stop(0);
  const fresh = await startFerret(`main${++replaced}`, ctx.resultsDir, ferret.handler);
  if (kind === "ferretdb") ctx.ferret = fresh;
  else ctx.ferretPg = fresh;
  (ctx.replacedStores ??= []).push(`${STORE_LABEL[kind]} at ${new Date().toISOString()}`);
  return true;
}
let replaced = 0;
