import { templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { listJobSummaries } from "../../../control/jobs.ts";
import { fleetPlacement } from "../../../control/owners.ts";
import { globalArgs } from "../../_globals.ts";
import { judgementNotes } from "../../_judged.ts";
import { output, relative, table } from "../../_output.ts";
import { withStore } from "../../_runtime.ts";
import { displayIso } from "../../../schedule/display.ts";
import type { JobSummary } from "../../../control/jobs.ts";

/** `active`, `disabled`, `INVALID`, `paused`, or `done (success)` for a one-time job that ran. */
export function stateText(j: JobSummary): string {
  if (j.state === "invalid") return "INVALID";
  if (j.state === "done") return `done (${j.done!.status})`;
  return j.state;
}

export default defineCommand({
  meta: { name: "list", description: "Jobs with schedule, zone, enabled, next fire time and last result" },
  args: { ...globalArgs },
  async run() {
    await withStore(async ({ store, config }) => {
      const now = Date.now();
      const fleet = fleetPlacement(await store.listMachines(), now, config.dead_after_sec * 1000, config.placement);
      const jobs = await listJobSummaries(store, templateKeys(config), config.tz, now, fleet);
      output({ jobs }, () => {
        if (jobs.length === 0) return "no jobs yet: add some with `fleetcron jobs apply FILE`";
        const rows = jobs.map((j) => [
          j.name,
          stateText(j),
          j.schedule,
          j.tz,
          j.next_fire ? `${displayIso(j.next_fire, j.tz)} (${relative(j.next_fire, now)})` : "-",
          j.last_run ? `${j.last_run.status} ${relative(j.last_run.scheduled_for, now)}` : "-",
          j.owner ?? (j.owner_note ? "NONE" : "-"),
        ]);
        const notes = judgementNotes(jobs, config.tz);
        return [
          table(["NAME", "STATE", "SCHEDULE", "TZ", "NEXT", "LAST", "OWNER"], rows),
          ...jobs.filter((j) => j.paused).map((j) => `"${j.name}" paused by ${j.paused!.by}${j.paused!.until ? ` until ${displayIso(j.paused!.until, j.tz)}` : ""}${j.paused!.note ? `: ${j.paused!.note}` : ""}`),
          ...(notes.length ? ["", ...notes] : []),
          ...jobs.filter((j) => j.owner === null && j.owner_note && j.owner_note !== "no agent is running").map((j) => `"${j.name}" will not run: ${j.owner_note}`),
        ].join("\n");
      });
    });
  },
});
