import { defineCommand } from "citty";
import { machineSummaries, type MachineSummary } from "../../control/machines.ts";
import { globalArgs } from "../_globals.ts";
import { output, relative, table } from "../_output.ts";
import { withStore } from "../_runtime.ts";

/** What an agent is doing as far as the fleet can tell: a record saying `running` whose heartbeat stopped is `dead`. */
export function stateOf(m: Pick<MachineSummary, "alive" | "status">): string {
  return m.alive ? m.status : m.status === "stopped" ? "stopped" : "dead";
}

export default defineCommand({
  meta: { name: "machines", description: "Agents: machine id, hostname, serial, state (running, draining, stopped, dead), last seen, version, clock offset" },
  args: { ...globalArgs },
  async run() {
    await withStore(async ({ store, config }) => {
      const now = Date.now();
      const machines = (await machineSummaries(store, now, config.dead_after_sec * 1000)).map((m) => ({ ...m, state: stateOf(m) }));
      output({ machines }, () => {
        if (machines.length === 0) return "no agent has run against this store yet: start one with `fleetcron run`";
        return [
          table(
            ["MACHINE", "HOST", "SERIAL", "STATE", "LAST SEEN", "VERSION", "CLOCK OFFSET"],
            machines.map((m) => [m.machine_id, m.hostname, m.serial, m.state, relative(m.last_seen, now), m.version, m.clock_offset_ms === null ? null : `${m.clock_offset_ms} ms`]),
          ),
          ...machines.filter((m) => m.clock_warning).map((m) => `warning: ${m.machine_id}: ${m.clock_warning}`),
        ].join("\n");
      });
    });
  },
});
