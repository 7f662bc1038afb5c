import { secretScope, templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { applyPlan, planApply, type JobChange } from "../../../control/jobs.ts";
import { checkJobsFile } from "../../../control/jobs-file.ts";
import { FleetCronError, EXIT_FAILED } from "../../../core/errors.ts";
import { confirm } from "../../_confirm.ts";
import { globalArgs } from "../../_globals.ts";
import { output, truncate, writeErr } from "../../_output.ts";
import { warnIfNoAgentAlive, withStore } from "../../_runtime.ts";

const SIGN = { created: "+", updated: "~", deleted: "-", unchanged: "=" } as const;

function short(value: unknown): string {
  return value === undefined ? "(unset)" : truncate(JSON.stringify(value), 60);
}

/** The diff, one job a line, an update's fields below it. */
export function changeLines(changes: JobChange[]): string[] {
  return changes.flatMap((c) => [
    `${SIGN[c.change]} ${c.change.padEnd(9)} ${c.name}${c.likely_rename_of ? `  (same definition as "${c.likely_rename_of}": a rename? \`fleetcron jobs rename "${c.likely_rename_of}" "${c.name}"\` keeps its id and history)` : ""}`,
    ...(c.fields ?? []).map((f) => `      ${f.field}: ${short(f.before)} → ${short(f.after)}`),
  ]);
}

export default defineCommand({
  meta: { name: "apply", description: "Create or update jobs by name from a JSON file; nothing is written if any job is invalid" },
  args: {
    ...globalArgs,
    file: { type: "positional", required: true, description: "JSON file: an array of jobs, or { \"jobs\": [...] }" },
    prune: { type: "boolean", description: "Delete jobs that the file does not name (asks first on a terminal; else needs --yes)" },
    yes: { type: "boolean", alias: ["y"], description: "Do not ask before --prune deletes jobs" },
    "dry-run": { type: "boolean", description: "Print what would change (a diff) and write nothing" },
  },
  async run({ args }) {
    await withStore(async (rt) => {
      const { store, config } = rt;
      const report = checkJobsFile(args.file as string, templateKeys(config), secretScope(config));
      for (const warning of report.warningText) rt.log.warn(warning);
      if (report.problems.length) {
        throw new FleetCronError("E_INVALID_JOBS", `${report.text}\nnothing written: fix the problems above and apply again`, EXIT_FAILED);
      }
      const plan = await planApply(store, report.jobs, { prune: Boolean(args.prune), now: Date.now(), defaultTz: config.tz });
      const changed = plan.changes.filter((c) => c.change !== "unchanged").length;
      const deletions = plan.changes.filter((c) => c.change === "deleted");
      if (args["dry-run"]) {
        output({ file: report.file, dry_run: true, changes: plan.changes }, () => [...changeLines(plan.changes), `${changed} change(s) — dry run, nothing written`].join("\n"));
        return;
      }
      if (deletions.length > 0) {
        if (!args.yes) writeErr(`--prune deletes ${deletions.length} job(s) that ${report.file} does not name:\n${deletions.map((d) => `  - ${d.name}`).join("\n")}\n`);
        const go = await confirm(`delete ${deletions.length} job(s)?`, { yes: Boolean(args.yes), flagHint: " (or leave out --prune; --dry-run shows the whole diff)" });
        if (!go) throw new FleetCronError("E_CANCELLED", "nothing written: the deletion was not confirmed", EXIT_FAILED);
      }
      const changes = await applyPlan(store, plan, Date.now());
      output({ file: report.file, changes }, () => [...changeLines(changes), `${changed} change(s); agents pick them up within ${config.heartbeat_sec} s`].join("\n"));
      if (changed > 0) await warnIfNoAgentAlive(rt);
    });
  },
});
