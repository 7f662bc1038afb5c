import { firingOrder, placementKeyOf, type Member, type PlacementMode } from "../coordinator/placement.ts";
import type { Job } from "../jobs/types.ts";
import type { MachineRecord } from "../store/types.ts";
import { isAlive } from "./machines.ts";

/**
 * Who fires each job now, as the fleet's agents see it: the same placement they compute from their
 * heartbeats (docs/protocol.md, "Placement"), from the machines collection as this CLI reads it.
 */
export interface FleetPlacement {
  mode: PlacementMode;
  members: Member[];
}

export function fleetPlacement(machines: MachineRecord[], now: number, deadAfterMs: number, fallback: PlacementMode): FleetPlacement {
  const live = machines.filter((m) => m.protocol === 2 && isAlive(m, now, deadAfterMs));
  // Agents publish their placement; they should agree, and the first live one is taken when not.
  const mode = live.find((m) => m.placement)?.placement ?? fallback;
  const members = live.map((m) => ({ machineId: m._id, serial: m.serial ?? null, tags: m.tags ?? {}, live: true, ready: m.ready === true }));
  return { mode, members };
}

export interface JobOwner {
  /** The agent that fires it on time, or null. */
  owner: string | null;
  /** Every agent that may fire it, in order (the others follow k × failover_step_sec late). */
  order: string[];
  /** Why nobody may fire it, when `owner` is null. */
  note: string | null;
}

export function ownerOf(job: Pick<Job, "id" | "run_on" | "limit">, fleet: FleetPlacement): JobOwner {
  const order = firingOrder(placementKeyOf(job), fleet.members, fleet.mode, job.run_on);
  if (order.length > 0) return { owner: order[0]!, order, note: null };
  if (fleet.members.length === 0) return { owner: null, order, note: "no agent is running" };
  const wanted = Object.entries(job.run_on ?? {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return { owner: null, order, note: `no live agent may run it (run_on ${wanted} matches none of ${fleet.members.map((m) => m.machineId).join(", ")})` };
}
