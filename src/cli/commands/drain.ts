import { defineCommand } from "citty";
import { join } from "node:path";
import { sendCommand, waitForAcks } from "../../control/commands.ts";
import { isAlive } from "../../control/machines.ts";
import { requireMachine } from "../../control/names.ts";
import { systemClock } from "../../core/clock.ts";
import { FleetCronError, EXIT_FAILED } from "../../core/errors.ts";
import { readPrivateFile } from "../../core/private-files.ts";
import { globalArgs } from "../_globals.ts";
import { output } from "../_output.ts";
import { warnIfNoAgentAlive, withStore } from "../_runtime.ts";
import { ackLines, timeoutOf, waitArgs } from "./send-command.ts";

export default defineCommand({
  meta: { name: "drain", description: "Tell an agent to stop claiming, finish its work, hand over its serial and exit" },
  args: {
    ...globalArgs,
    machine: { type: "positional", required: false, description: "Machine id (default: the agent of this FLEETCRON_HOME)" },
    wait: { type: "boolean", description: "Wait until the agent has acknowledged and stopped; exit 1 if it did not in time" },
    timeout: { ...waitArgs.timeout, description: "Seconds to wait with --wait (default: shutdown_timeout_sec + 2 heartbeats + 5)" },
  },
  async run({ args }) {
    await withStore(async (rt) => {
      const { store, config } = rt;
      let target = (args.machine as string | undefined) || config.machine_id;
      const idFile = join(config.home, "machine-id");
      if (!target) target = readPrivateFile(idFile)?.trim() ?? null;
      if (!target) throw new FleetCronError("E_NO_MACHINE", `no machine id given and no agent has run with home ${config.home}; name one (see \`fleetcron machines\`)`, EXIT_FAILED);
      const machine = await requireMachine(store, target);
      const timeoutSec = timeoutOf(args.timeout, config.shutdown_timeout_sec + config.heartbeat_sec * 2 + 5);
      const started = Date.now();
      const commandId = await sendCommand(store, "drain", target, started);
      if (!args.wait) {
        output({ command_id: commandId, target }, () => `drain sent to ${target}; it stops within ${config.heartbeat_sec} s once its running work is done`);
        if (!isAlive(machine, started, config.dead_after_sec * 1000)) await warnIfNoAgentAlive(rt);
        return;
      }
      rt.log.info(`drain sent to ${target}; waiting up to ${timeoutSec} s for it to finish its work and stop`);
      const deadAfterMs = config.dead_after_sec * 1000;
      const report = await waitForAcks(store, commandId, target, { clock: systemClock, timeoutMs: timeoutSec * 1000, deadAfterMs });
      // Acknowledged means it stopped claiming; drained means its record says stopped (serial released).
      let stopped = false;
      while (report.acked.length > 0 && Date.now() - started < timeoutSec * 1000) {
        const now = (await store.listMachines()).find((m) => m._id === target);
        if (!now || now.status === "stopped") {
          stopped = true;
          break;
        }
        await Bun.sleep(250);
      }
      const lines = ackLines("drain", report, timeoutSec);
      const data = { type: "drain", target, ...report, stopped };
      output(data, () => [...lines, stopped ? `${target}: stopped (work finished, serial handed over)` : report.acked.length ? `${target}: acknowledged but still not stopped after ${timeoutSec} s` : ""].filter(Boolean).join("\n"));
      if (!stopped && report.dead.length === 0) process.exitCode = EXIT_FAILED;
    });
  },
});
