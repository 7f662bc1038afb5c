import { defineCommand } from "citty";
import { deleteJobByName } from "../../../control/jobs.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { withStore } from "../../_runtime.ts";

export default defineCommand({
  meta: { name: "delete", description: "Delete a job by name (its run history stays)" },
  args: { ...globalArgs, name: { type: "positional", required: true, description: "Job name" } },
  async run({ args }) {
    await withStore(async ({ store }) => {
      await deleteJobByName(store, args.name as string, Date.now());
      output({ name: args.name, deleted: true }, () => `${args.name}: deleted`);
    });
  },
});
