import { defineCommand } from "citty";
import { sendCommand, waitForAcks, type AckReport } from "../../control/commands.ts";
import { requireMachine } from "../../control/names.ts";
import { systemClock } from "../../core/clock.ts";
import { EXIT_FAILED, UsageError } from "../../core/errors.ts";
import type { CommandType } from "../../store/types.ts";
import { globalArgs } from "../_globals.ts";
import { output } from "../_output.ts";
import { warnIfNoAgentAlive, withStore } from "../_runtime.ts";

export const waitArgs = {
  wait: { type: "boolean", description: "Wait until every live target has acknowledged; report who did not" },
  timeout: { type: "string", valueHint: "seconds", description: "Seconds to wait with --wait (default: 2 heartbeats + 5)" },
} as const;

export function timeoutOf(value: unknown, fallbackSec: number): number {
  const sec = value === undefined ? fallbackSec : Number(value);
  if (!Number.isFinite(sec) || sec <= 0) throw new UsageError(`--timeout must be a positive number of seconds (got "${value}")`);
  return sec;
}

/** The lines of an acknowledgement report (shared by `reload --wait` and `drain --wait`). */
export function ackLines(type: string, report: AckReport, timeoutSec: number): string[] {
  return [
    `${type} ${report.command_id}: acknowledged by ${report.acked.length ? report.acked.map((a) => a.machine_id + (a.error ? ` (failed: ${a.error})` : "")).join(", ") : "nobody"}`,
    ...report.silent.map((m) => `  ${m}: alive but did not answer within ${timeoutSec} s`),
    ...report.dead.map((d) => `  ${d.machine_id}: dead (${d.status === "stopped" ? "stopped" : "no heartbeat"}, last seen ${d.last_seen}) — not waited for`),
  ];
}

/** `reload` and `reload-config`: one command document, optionally waiting for the acks. */
export function commandSender(type: CommandType, description: string) {
  return defineCommand({
    meta: { name: type, description },
    args: {
      ...globalArgs,
      machine: { type: "positional", required: false, description: "Only this machine id (default: every agent)" },
      ...waitArgs,
    },
    async run({ args }) {
      await withStore(async (rt) => {
        const { store, config } = rt;
        const target = (args.machine as string | undefined) || null;
        if (target) await requireMachine(store, target);
        const timeoutSec = timeoutOf(args.timeout, config.heartbeat_sec * 2 + 5);
        const commandId = await sendCommand(store, type, target, Date.now());
        if (!args.wait) {
          output({ command_id: commandId, type, target }, () => `${type} sent to ${target ?? "every agent"} (${commandId}); agents apply it within ${config.heartbeat_sec} s`);
          await warnIfNoAgentAlive(rt);
          return;
        }
        rt.log.info(`${type} sent to ${target ?? "every agent"}; waiting up to ${timeoutSec} s for acknowledgements`);
        const report = await waitForAcks(store, commandId, target, { clock: systemClock, timeoutMs: timeoutSec * 1000, deadAfterMs: config.dead_after_sec * 1000 });
        output({ type, target, ...report }, () => ackLines(type, report, timeoutSec).join("\n"));
        if (report.silent.length > 0 || report.acked.some((a) => a.error)) process.exitCode = EXIT_FAILED;
        else if (report.acked.length === 0) await warnIfNoAgentAlive(rt);
      });
    },
  });
}
