import { defineCommand } from "citty";
import { machineSummaries } from "../../control/machines.ts";
import { globalArgs } from "../_globals.ts";
import { output, table } from "../_output.ts";
import { withStore } from "../_runtime.ts";

export default defineCommand({
  meta: { name: "machines", description: "Agents: machine id, hostname, serial, last seen, alive or not, version, clock offset" },
  args: { ...globalArgs },
  async run() {
    await withStore(async ({ store, config }) => {
      const machines = await machineSummaries(store, Date.now(), config.dead_after_sec * 1000);
      output({ machines }, () => {
        if (machines.length === 0) return "no agent has run against this store yet: start one with `fleetcron run`";
        return [
          table(
            ["MACHINE", "HOST", "SERIAL", "ALIVE", "STATUS", "LAST SEEN", "VERSION", "CLOCK OFFSET"],
            machines.map((m) => [m.machine_id, m.hostname, m.serial, m.alive ? "yes" : "no", m.status, `${m.seconds_since_seen} s ago`, m.version, m.clock_offset_ms === null ? null : `${m.clock_offset_ms} ms`]),
          ),
          ...machines.filter((m) => m.clock_warning).map((m) => `warning: ${m.machine_id}: ${m.clock_warning}`),
        ].join("\n");
      });
    });
  },
});
