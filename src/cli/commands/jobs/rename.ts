import { defineCommand } from "citty";
import { renameJob } from "../../../control/jobs.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { warnIfNoAgentAlive, withStore } from "../../_runtime.ts";

export default defineCommand({
  meta: { name: "rename", description: "Rename a job, keeping its id and run history (apply a file with the new name afterwards)" },
  args: {
    ...globalArgs,
    old: { type: "positional", required: true, description: "Current job name" },
    new: { type: "positional", required: true, description: "New job name" },
  },
  async run({ args }) {
    await withStore(async (rt) => {
      const doc = await renameJob(rt.store, args.old as string, args.new as string, Date.now());
      output({ id: doc._id, from: args.old, to: args.new }, () => `"${args.old}" is now "${args.new}" (id ${doc._id}; its run history stays with it)`);
      await warnIfNoAgentAlive(rt);
    });
  },
});
