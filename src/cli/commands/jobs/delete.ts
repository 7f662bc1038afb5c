import { defineCommand } from "citty";
import { deleteJobByName } from "../../../control/jobs.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { warnIfNoAgentAlive, withStore } from "../../_runtime.ts";

export default defineCommand({
  meta: { name: "delete", description: "Delete a job by name (its run history stays)" },
  args: { ...globalArgs, name: { type: "positional", required: true, description: "Job name" } },
  async run({ args }) {
    await withStore(async (rt) => {
      const running = await deleteJobByName(rt.store, args.name as string, Date.now());
      output({ name: args.name, deleted: true, running: running.map((r) => ({ run_id: r._id, machine_id: r.machine_id ?? null, started_at: (r.started_at ?? r.claimed_at).toISOString() })) }, () =>
        [
          `${args.name}: deleted`,
          ...running.map((r) => `  its run ${r._id} is still running on ${r.machine_id ?? "an unknown machine"}: the delete does not stop it, and its result is recorded`),
        ].join("\n"),
      );
      await warnIfNoAgentAlive(rt);
    });
  },
});
