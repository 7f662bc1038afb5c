import { secretScope, templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { applyJobs } from "../../../control/jobs.ts";
import { checkJobsFile } from "../../../control/jobs-file.ts";
import { FleetCronError, EXIT_FAILED } from "../../../core/errors.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { withStore } from "../../_runtime.ts";

const SIGN = { created: "+", updated: "~", deleted: "-", unchanged: "=" } as const;

export default defineCommand({
  meta: { name: "apply", description: "Create or update jobs by name from a JSON file; nothing is written if any job is invalid" },
  args: {
    ...globalArgs,
    file: { type: "positional", required: true, description: "JSON file: an array of jobs, or { \"jobs\": [...] }" },
    prune: { type: "boolean", description: "Delete jobs that the file does not name" },
  },
  async run({ args }) {
    await withStore(async ({ store, config }) => {
      const report = checkJobsFile(args.file as string, templateKeys(config), secretScope(config));
      if (report.problems.length) {
        throw new FleetCronError("E_INVALID_JOBS", `${report.text}\nnothing written: fix the problems above and apply again`, EXIT_FAILED);
      }
      const changes = await applyJobs(store, report.jobs, { prune: Boolean(args.prune), now: Date.now(), defaultTz: config.tz });
      const changed = changes.filter((c) => c.change !== "unchanged").length;
      output({ file: report.file, changes }, () =>
        [...changes.map((c) => `${SIGN[c.change]} ${c.change.padEnd(9)} ${c.name}`), `${changed} change(s); agents pick them up within ${config.heartbeat_sec} s`].join("\n"),
      );
    });
  },
});
