import { defineCommand } from "citty";
import { join } from "node:path";
import { sendCommand } from "../../control/commands.ts";
import { FleetCronError, EXIT_FAILED } from "../../core/errors.ts";
import { readPrivateFile } from "../../core/private-files.ts";
import { globalArgs } from "../_globals.ts";
import { output } from "../_output.ts";
import { withStore } from "../_runtime.ts";

export default defineCommand({
  meta: { name: "drain", description: "Tell an agent to stop claiming, finish its work, hand over its serial and exit" },
  args: {
    ...globalArgs,
    machine: { type: "positional", required: false, description: "Machine id (default: the agent of this FLEETCRON_HOME)" },
  },
  async run({ args }) {
    await withStore(async ({ store, config }) => {
      let target = (args.machine as string | undefined) || config.machine_id;
      const idFile = join(config.home, "machine-id");
      if (!target) target = readPrivateFile(idFile)?.trim() ?? null;
      if (!target) throw new FleetCronError("E_NO_MACHINE", `no machine id given and no agent has run with home ${config.home}; name one (see \`fleetcron machines\`)`, EXIT_FAILED);
      const commandId = await sendCommand(store, "drain", target, Date.now());
      output({ command_id: commandId, target }, () => `drain sent to ${target}; it stops within ${config.heartbeat_sec} s once its running work is done`);
    });
  },
});
