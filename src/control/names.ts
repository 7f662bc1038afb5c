/**
 * Names the user types (a job name, a machine id) that match nothing are errors naming the
 * nearest ones that exist: acting on nothing with exit 0 hides the typo.
 */
import { EXIT_FAILED, FleetCronError } from "../core/errors.ts";
import { nearest } from "../core/nearest.ts";
import type { MachineRecord, Store } from "../store/types.ts";

export class NotFoundError extends FleetCronError {
  constructor(
    code: string,
    message: string,
    /** Added to the `--json` error document. */
    readonly details: { matches: string[] },
  ) {
    super(code, message, EXIT_FAILED);
    this.name = "NotFoundError";
  }
}

/** `no job named "Dayly Report"; did you mean "Daily Report"?` (or the list, when nothing is near). */
export function notFound(what: "job" | "machine" | "run", name: string, known: readonly string[], hint: string): NotFoundError {
  const matches = nearest(name, known);
  const label = what === "job" ? `no job named "${name}"` : what === "run" ? `no run "${name}"` : `no machine "${name}" has run against this store`;
  const tail = matches.length
    ? `; did you mean ${matches.map((m) => `"${m}"`).join(" or ")}?`
    : known.length && what !== "run"
      ? ` (${what === "job" ? "jobs" : "machines"}: ${known.slice(0, 10).map((n) => `"${n}"`).join(", ")}${known.length > 10 ? ", …" : ""})`
      : ` (${hint})`;
  return new NotFoundError(`E_NO_${what.toUpperCase()}`, `${label}${tail}`, { matches });
}

/** A machine id typed by the user must be one that has run against this store. */
export async function requireMachine(store: Store, machineId: string): Promise<MachineRecord> {
  const machines = await store.listMachines();
  const found = machines.find((m) => m._id === machineId);
  if (!found) throw notFound("machine", machineId, machines.map((m) => m._id), "no agent has run against this store yet; `fleetcron machines` lists them");
  return found;
}
