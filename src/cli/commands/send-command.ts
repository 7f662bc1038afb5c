import { defineCommand } from "citty";
import { sendCommand, waitForAcks } from "../../control/commands.ts";
import { systemClock } from "../../core/clock.ts";
import { FleetCronError, EXIT_FAILED } from "../../core/errors.ts";
import type { CommandType } from "../../store/types.ts";
import { globalArgs } from "../_globals.ts";
import { output } from "../_output.ts";
import { withStore } from "../_runtime.ts";

/** `reload` and `reload-config`: one command document, optionally waiting for the acks. */
export function commandSender(type: CommandType, description: string) {
  return defineCommand({
    meta: { name: type, description },
    args: {
      ...globalArgs,
      machine: { type: "positional", required: false, description: "Only this machine id (default: every agent)" },
      wait: { type: "boolean", description: "Wait until every live target has acknowledged; report who did not" },
      timeout: { type: "string", description: "Seconds to wait with --wait (default: 2 heartbeats + 5)" },
    },
    async run({ args }) {
      await withStore(async ({ store, config }) => {
        const target = (args.machine as string | undefined) || null;
        const commandId = await sendCommand(store, type, target, Date.now());
        if (!args.wait) {
          return output({ command_id: commandId, type, target }, () => `${type} sent to ${target ?? "every agent"} (${commandId}); agents apply it within ${config.heartbeat_sec} s`);
        }
        const timeoutSec = args.timeout ? Number(args.timeout) : config.heartbeat_sec * 2 + 5;
        if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new FleetCronError("E_USAGE", `--timeout must be a positive number of seconds (got "${args.timeout}")`, 2);
        const report = await waitForAcks(store, commandId, target, { clock: systemClock, timeoutMs: timeoutSec * 1000, deadAfterMs: config.dead_after_sec * 1000 });
        output({ type, target, ...report }, () =>
          [
            `${type} ${commandId}: acknowledged by ${report.acked.length ? report.acked.map((a) => a.machine_id + (a.error ? ` (failed: ${a.error})` : "")).join(", ") : "nobody"}`,
            ...report.silent.map((m) => `  ${m}: alive but did not answer within ${timeoutSec} s`),
            ...report.dead.map((d) => `  ${d.machine_id}: not alive (${d.status}, last seen ${d.last_seen}) — not waited for`),
          ].join("\n"),
        );
        if (report.silent.length > 0 || report.acked.some((a) => a.error)) process.exitCode = EXIT_FAILED;
      });
    },
  });
}
