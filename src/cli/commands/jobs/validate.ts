import { secretScope, templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { checkJobsFile } from "../../../control/jobs-file.ts";
import { EXIT_FAILED } from "../../../core/errors.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { loadRuntime } from "../../_runtime.ts";

export default defineCommand({
  meta: { name: "validate", description: "Validate a jobs file; list every problem by line, job name and field" },
  args: { ...globalArgs, file: { type: "positional", required: true, description: "JSON file: an array of jobs, or { \"jobs\": [...] }" } },
  async run({ args }) {
    const { config, log } = loadRuntime();
    const report = checkJobsFile(args.file as string, templateKeys(config), secretScope(config));
    for (const warning of report.warningText) log.warn(warning);
    output({ file: report.file, valid: report.problems.length === 0, jobs: report.jobs.map((j) => j.name), problems: report.problems, warnings: report.warnings }, () =>
      report.problems.length ? report.text : `${report.file}: ${report.jobs.length} job(s) valid`,
    );
    if (report.problems.length) process.exitCode = EXIT_FAILED;
  },
});
