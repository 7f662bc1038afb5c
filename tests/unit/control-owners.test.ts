import { describe, expect, test } from "bun:test";
import { fleetPlacement, ownerOf } from "../../src/control/owners.ts";
import { firingOrder } from "../../src/coordinator/placement.ts";
import type { MachineRecord } from "../../src/store/types.ts";

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0);

function machine(id: string, over: Partial<MachineRecord> = {}): MachineRecord {
  return {
    _id: id, hostname: id, pid: 1, serial: null, status: "running", version: "1", started_at: new Date(NOW - 60_000), last_seen: new Date(NOW - 1000),
    clock_offset_ms: 0, protocol: 2, session: `s-${id}`, ready: true, tags: {}, placement: "spread", ...over,
  };
}

describe("who fires a job, as jobs list, jobs show and status say", () => {
  const machines = [
    machine("eu-1", { tags: { region: "eu" } }),
    machine("us-1", { tags: { region: "us" } }),
    machine("eu-2", { tags: { region: "eu" } }),
    machine("dead", { last_seen: new Date(NOW - 60_000), tags: { region: "ap" } }),
    machine("v1-agent", { protocol: undefined, tags: { region: "ap" } }),
  ];
  const fleet = fleetPlacement(machines, NOW, 15_000, "serial");

  test("only live v2 agents count, and their published placement wins over the CLI's own", () => {
    expect(fleet.mode).toBe("spread");
    expect(fleet.members.map((m) => m.machineId).sort()).toEqual(["eu-1", "eu-2", "us-1"]);
  });

  test("the owner is the first of the job's firing order among the agents its run_on allows", () => {
    const owner = ownerOf({ id: "job-1", run_on: { region: "eu" } }, fleet);
    expect(owner.order).toEqual(firingOrder("job-1", fleet.members, "spread", { region: "eu" }));
    expect(owner.order.sort()).toEqual(["eu-1", "eu-2"]);
    expect(owner.owner).toBe(firingOrder("job-1", fleet.members, "spread", { region: "eu" })[0]!);
  });

  test("a job no live agent may run says why, naming the agents", () => {
    expect(ownerOf({ id: "job-2", run_on: { region: "ap" } }, fleet)).toEqual({
      owner: null,
      order: [],
      note: "no live agent may run it (run_on region=ap matches none of eu-1, us-1, eu-2)",
    });
    expect(ownerOf({ id: "job-3" }, fleetPlacement([], NOW, 15_000, "spread")).note).toBe("no agent is running");
  });
});
