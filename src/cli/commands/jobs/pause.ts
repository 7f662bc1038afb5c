import { defineCommand } from "citty";
import { hostname, userInfo } from "node:os";
import { operatorName, pauseJob, resumeJob } from "../../../control/pause.ts";
import { displayTime } from "../../../schedule/display.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { withStore } from "../../_runtime.ts";

export const pauseCommand = defineCommand({
  meta: { name: "pause", description: "Hold a job back (no runs, no records) until `jobs resume` or --until; says why and who" },
  args: {
    ...globalArgs,
    name: { type: "positional", required: true, description: "Job name" },
    note: { type: "string", description: "Why it is paused (shown by jobs list, jobs show and status)" },
    until: { type: "string", description: 'Resume by itself then: a duration ("30m", "2h") or a time ("2026-12-24T18:00" in the job\'s zone, or with an offset)' },
  },
  async run({ args }) {
    await withStore(async ({ store, config }) => {
      const result = await pauseJob(store, args.name as string, {
        ...(args.note !== undefined ? { note: String(args.note) } : {}),
        ...(args.until !== undefined ? { until: String(args.until) } : {}),
        by: operatorName(() => userInfo().username, hostname, process.env),
        defaultTz: config.tz,
        now: Date.now(),
      });
      const tz = (await store.findJobByName(result.name))?.tz;
      const zone = typeof tz === "string" ? tz : config.tz;
      output(result, () =>
        `${result.name}: paused${result.replaced ? " (the earlier pause is replaced)" : ""} by ${result.paused.by}` +
          (result.paused.until ? ` until ${displayTime(Date.parse(result.paused.until), zone)}, then it resumes by itself` : "; `fleetcron jobs resume` starts it again") +
          (result.paused.note ? ` — ${result.paused.note}` : "") +
          `\nagents stop firing it within ${config.heartbeat_sec} s`,
      );
    });
  },
});

export const resumeCommand = defineCommand({
  meta: { name: "resume", description: "Fire a paused job again from its next occurrence (the paused ones are not caught up)" },
  args: { ...globalArgs, name: { type: "positional", required: true, description: "Job name" } },
  async run({ args }) {
    await withStore(async ({ store, config }) => {
      const result = await resumeJob(store, args.name as string, Date.now());
      output(result, () =>
        !result.changed
          ? `${result.name}: not paused`
          : result.lapsed
            ? `${result.name}: its pause had already ended (until ${result.was?.until}); nothing held it back`
            : `${result.name}: resumed; agents fire it again within ${config.heartbeat_sec} s`,
      );
    });
  },
});
