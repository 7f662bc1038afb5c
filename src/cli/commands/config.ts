import { defineCommand } from "citty";
import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { exampleConfig } from "../../config/example.ts";
import { FleetCronError, EXIT_FAILED } from "../../core/errors.ts";
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
    if (existsSync(path) && !args.force) throw new FleetCronError("E_EXISTS", `${path} already exists; pass --force to overwrite it`, EXIT_FAILED);
    // 0600: the file holds secrets.
    writeFileSync(path, `${JSON.stringify(exampleConfig(), null, 2)}\n`, { mode: 0o600 });
    output({ path }, () => `wrote ${path}\nnext: fleetcron --config ${path} jobs apply config/jobs.example.json && fleetcron --config ${path} run`);
  },
});

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
