import { defineCommand } from "citty";
import { setEnabled } from "../../../control/jobs.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { warnIfNoAgentAlive, withStore } from "../../_runtime.ts";

function toggle(enabled: boolean) {
  const verb = enabled ? "enable" : "disable";
  return defineCommand({
    meta: { name: verb, description: `${enabled ? "Enable" : "Disable"} a job by name` },
    args: { ...globalArgs, name: { type: "positional", required: true, description: "Job name" } },
    async run({ args }) {
      await withStore(async (rt) => {
        const changed = await setEnabled(rt.store, args.name as string, enabled, Date.now());
        output({ name: args.name, enabled, changed }, () => `${args.name}: ${changed ? `${verb}d` : `already ${verb}d`}`);
        if (changed) await warnIfNoAgentAlive(rt);
      });
    },
  });
}

export const enableCommand = toggle(true);
export const disableCommand = toggle(false);
