import { defineCommand } from "citty";
import { renameSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import jobsExample from "../../../config/jobs.example.json" with { type: "json" };
import { exampleConfig } from "../../config/example.ts";
import { FleetCronError, EXIT_FAILED } from "../../core/errors.ts";
import { createPrivateFile } from "../../core/private-files.ts";
import { openStore } from "../../store/index.ts";
import { globalArgs } from "../_globals.ts";
import { output } from "../_output.ts";
import { loadRuntime } from "../_runtime.ts";

const init = defineCommand({
  meta: { name: "init", description: "Write an example config file (embedded store)" },
  args: {
    ...globalArgs,
    path: { type: "positional", required: false, description: "Where (default ./fleetcron.config.json)" },
    force: { type: "boolean", description: "Overwrite an existing file" },
  },
  run({ args }) {
    const path = resolve((args.path as string | undefined) ?? "fleetcron.config.json");
    writeConfigFile(path, `${JSON.stringify(exampleConfig(), null, 2)}\n`, Boolean(args.force));
    // The example jobs beside it (built into the binary, so they exist wherever the binary runs);
    // an existing file of that name is kept, never overwritten.
    const jobs = join(dirname(path), "jobs.example.json");
    const wroteJobs = createPrivateFile(jobs, `${JSON.stringify(jobsExample, null, 2)}\n`);
    output({ path, jobs_example: jobs, jobs_example_written: wroteJobs }, () =>
      [
        `wrote ${path}`,
        wroteJobs ? `wrote ${jobs} (example jobs)` : `kept ${jobs} (it exists already)`,
        `next: fleetcron --config ${path} jobs apply ${jobs} && fleetcron --config ${path} run`,
      ].join("\n"),
    );
  },
});

/**
 * Mode 600 always (the file holds secrets), and never through a link: a new file is created
 * exclusively (O_EXCL does not follow a link, even a dangling one), and `--force` writes a fresh
 * 0600 file beside it and renames it over the old one, which replaces a link instead of writing
 * where it points and leaves no old, wider mode behind.
 */
function writeConfigFile(path: string, content: string, force: boolean): void {
  if (!force) {
    if (!createPrivateFile(path, content)) throw new FleetCronError("E_EXISTS", `${path} already exists; pass --force to overwrite it`, EXIT_FAILED);
    return;
  }
  const temp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  if (!createPrivateFile(temp, content)) throw new FleetCronError("E_EXISTS", `${temp} already exists; remove it and try again`, EXIT_FAILED);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new FleetCronError("E_WRITE", `cannot write ${path}: ${(error as Error).message}`, EXIT_FAILED);
  }
}

const check = defineCommand({
  meta: { name: "check", description: "Validate the config and test the store connection" },
  args: { ...globalArgs },
  async run() {
    const { config } = loadRuntime();
    const started = Date.now();
    const store = await openStore(config.store);
    try {
      const serverTime = await store.serverTime();
      const jobs = await store.listJobs();
      const offset = Date.now() - serverTime.getTime();
      output(
        { config: config.path, store: { kind: store.kind, location: store.location, reachable: true, round_trip_ms: Date.now() - started, clock_offset_ms: offset }, jobs: jobs.length, tz: config.tz, secrets: Object.keys(config.secrets) },
        () =>
          [
            `config ${config.path ?? "(none: defaults)"}: valid`,
            `store  ${store.kind} ${store.location}: reachable in ${Date.now() - started} ms, ${jobs.length} job(s)`,
            ...(Math.abs(offset) > 1000 ? [`warning: this clock differs from the store's by ${(offset / 1000).toFixed(1)} s: check NTP`] : []),
            `tz     ${config.tz}`,
            `secrets ${Object.keys(config.secrets).join(", ") || "(none)"}`,
          ].join("\n"),
      );
    } finally {
      await store.close();
    }
  },
});

export default defineCommand({
  meta: { name: "config", description: "Write an example config, or check one" },
  subCommands: { init, check },
});
