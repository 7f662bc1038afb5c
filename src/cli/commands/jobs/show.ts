import { templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { liveView, parseStored, requireJob, summarizeJob } from "../../../control/jobs.ts";
import { fleetPlacement } from "../../../control/owners.ts";
import { globalArgs } from "../../_globals.ts";
import { judgementNotes } from "../../_judged.ts";
import { detailOf, localTime, output, relative } from "../../_output.ts";
import { withStore } from "../../_runtime.ts";
import { displayIso, displayTime } from "../../../schedule/display.ts";
import { stateText } from "./list.ts";

export default defineCommand({
  meta: { name: "show", description: "One job: its document, schedule, next fire time, problems and recent runs" },
  args: { ...globalArgs, name: { type: "positional", required: true, description: "Job name" } },
  async run({ args }) {
    await withStore(async ({ store, config }) => {
      const now = Date.now();
      const doc = await requireJob(store, args.name as string);
      const runs = await store.listRuns({ job_id: doc._id, limit: 10 });
      const fleet = fleetPlacement(await store.listMachines(), now, config.dead_after_sec * 1000, config.placement);
      const secretKeys = templateKeys(config);
      const summary = summarizeJob(parseStored(doc, secretKeys), config.tz, now, runs[0], fleet, await liveView(store, fleet), secretKeys);
      const { _id, ...document } = doc;
      output({ ...summary, document, recent_runs: runs }, () =>
        [
          `${summary.name} (${summary.id})`,
          `  enabled:  ${summary.enabled}`,
          `  state:    ${stateText(summary)}${summary.done ? ` — ran ${displayIso(summary.done.scheduled_for, summary.tz)}, attempt ${summary.done.attempt}` : ""}`,
          ...(summary.paused
            ? [`  paused:   by ${summary.paused.by} at ${displayIso(summary.paused.at, summary.tz)}, ${summary.paused.until ? `until ${displayIso(summary.paused.until, summary.tz)}` : "until `jobs resume`"}${summary.paused.note ? ` — ${summary.paused.note}` : ""}`]
            : []),
          `  schedule: ${summary.schedule} (${summary.tz}${summary.tz_source === "agents" ? ", the agents' zone" : summary.tz_source === "cli" ? ", this CLI's tz" : ""})`,
          `  next:     ${summary.next_fire ? `${displayIso(summary.next_fire, summary.tz)} (${relative(summary.next_fire, now)}; ${summary.next_fire} UTC)` : "-"}`,
          `  owner:    ${summary.owner ?? (summary.owner_note ? `none — ${summary.owner_note}` : "-")}`,
          ...(summary.problems.length
            ? [
                summary.missing_secrets.length ? "  INVALID as judged with this CLI's config:" : "  INVALID — skipped by every agent:",
                ...summary.problems.map((p) => `    ${p.path || "(document)"}: ${p.message}`),
              ]
            : []),
          ...judgementNotes([summary], config.tz)
            .filter((n) => !n.includes("invalid job(s)") && !n.startsWith("jobs without"))
            .map((n) => `  note: ${n}`),
          "  recent runs:",
          ...(runs.length
            ? runs.map((r) => `    ${localTime(r.scheduled_for, summary.tz)} (${relative(r.scheduled_for, now)})  ${r.status.padEnd(8)} ${r.trigger === "alert" ? "alert    " : `attempt ${r.attempt}`}  ${r.machine_id ?? "-"}  ${detailOf(r.status, r.error ?? r.reason)}`.trimEnd())
            : ["    (none)"]),
          "  document:",
          ...JSON.stringify(document, null, 2).split("\n").map((l) => `    ${l}`),
        ].join("\n"),
      );
    });
  },
});
