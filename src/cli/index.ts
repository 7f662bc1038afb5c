import { defineCommand } from "citty";
import { VERSION } from "../version.ts";
import { globalArgs } from "./_globals.ts";

const load = <T>(m: Promise<{ default: T }>) => m.then((r) => r.default);

/** One lazy map: a command's code loads only when it runs (the agent never loads the CLI listings). */
export const main = defineCommand({
  meta: { name: "fleetcron", version: VERSION, description: "Distributed cron for HTTP jobs: each occurrence exactly once across the fleet" },
  args: { ...globalArgs },
  default: "run",
  subCommands: {
    run: () => load(import("./commands/run.ts")),
    reload: () => import("./commands/send-command.ts").then((m) => m.commandSender("reload", "Tell every agent (or one) to reload jobs from the store now")),
    "reload-config": () =>
      import("./commands/send-command.ts").then((m) => m.commandSender("reload-config", "Tell every agent (or one) to re-read its config file (secrets, tz, …)")),
    jobs: () => load(import("./commands/jobs/index.ts")),
    runs: () => load(import("./commands/runs.ts")),
    machines: () => load(import("./commands/machines.ts")),
    audit: () => load(import("./commands/audit.ts")),
    drain: () => load(import("./commands/drain.ts")),
    status: () => load(import("./commands/status.ts")),
    config: () => load(import("./commands/config.ts")),
    service: () => load(import("./commands/service.ts")),
    completion: () => load(import("./commands/completion.ts")),
  },
});
