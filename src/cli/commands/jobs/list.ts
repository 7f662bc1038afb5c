import { defineCommand } from "citty";
import { listJobSummaries } from "../../../control/jobs.ts";
import { globalArgs } from "../../_globals.ts";
import { output, relative, table } from "../../_output.ts";
import { withStore } from "../../_runtime.ts";

export default defineCommand({
  meta: { name: "list", description: "Jobs with schedule, zone, enabled, next fire time and last result" },
  args: { ...globalArgs },
  async run() {
    await withStore(async ({ store, config }) => {
      const now = Date.now();
      const jobs = await listJobSummaries(store, Object.keys(config.secrets), config.tz, now);
      output({ jobs }, () => {
        if (jobs.length === 0) return "no jobs yet: add some with `fleetcron jobs apply FILE`";
        const rows = jobs.map((j) => [
          j.name,
          j.valid ? (j.enabled ? "yes" : "no") : "INVALID",
          j.schedule,
          j.tz,
          j.next_fire ? `${j.next_fire} (${relative(j.next_fire, now)})` : "-",
          j.last_run ? `${j.last_run.status} ${relative(j.last_run.scheduled_for, now)}` : "-",
        ]);
        const invalid = jobs.filter((j) => !j.valid);
        return [
          table(["NAME", "ENABLED", "SCHEDULE", "TZ", "NEXT", "LAST"], rows),
          ...(invalid.length ? ["", `${invalid.length} invalid job(s) are skipped by every agent; \`fleetcron jobs show NAME\` lists the problems`] : []),
        ].join("\n");
      });
    });
  },
});
