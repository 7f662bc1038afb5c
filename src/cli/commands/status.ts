import { templateKeys } from "../../config/load.ts";
import { defineCommand } from "citty";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gatherStatus } from "../../observe/status-data.ts";
import { globalArgs } from "../_globals.ts";
import { output, relative, table } from "../_output.ts";
import { withStore } from "../_runtime.ts";
import { displayIso } from "../../schedule/display.ts";

export default defineCommand({
  meta: { name: "status", description: "One screen: store, this machine, fleet, jobs due next, recent failures" },
  args: { ...globalArgs },
  async run() {
    await withStore(async ({ store, config }) => {
      const now = Date.now();
      const idFile = join(config.home, "machine-id");
      const thisMachine = config.machine_id ?? (existsSync(idFile) ? readFileSync(idFile, "utf8").trim() : null);
      // The status page (src/observe) shows the same data, gathered by the same function.
      const status = await gatherStatus(store, { now, deadAfterMs: config.dead_after_sec * 1000, defaultTz: config.tz, secretKeys: templateKeys(config), thisMachine });
      const { machines } = status.fleet;
      const self = status.this_machine.agent;
      const dueNext = status.due_next;
      const invalid = status.jobs.invalid;
      const failures = status.recent_failures;
      const data = { ...status, config: config.path };
      output(data, () =>
        [
          `store:    ${store.kind} ${store.location} (reachable)`,
          `config:   ${config.path ?? "(none: defaults)"}`,
          `machine:  ${thisMachine ?? "(no agent has run with this home)"}${self ? ` — ${self.alive ? "alive" : "not alive"}, serial ${self.serial ?? "-"}, seen ${self.seconds_since_seen} s ago` : ""}`,
          `fleet:    ${data.fleet.alive} alive of ${machines.length}${data.fleet.primary ? `, primary ${data.fleet.primary}` : ""}`,
          ...(machines.length ? [indent(table(["MACHINE", "SERIAL", "ALIVE", "LAST SEEN", "CLOCK"], machines.map((m) => [m.machine_id, m.serial, m.alive ? "yes" : "no", `${m.seconds_since_seen} s ago`, m.clock_warning ?? (m.clock_offset_ms === null ? null : `${m.clock_offset_ms} ms`)])))] : []),
          `jobs:     ${data.jobs.enabled} enabled of ${data.jobs.total}${invalid.length ? `, ${invalid.length} INVALID (skipped: ${invalid.map((j) => `"${j.name}"`).join(", ")})` : ""}`,
          ...status.jobs.list.filter((j) => j.paused).map((j) => `          "${j.name}" paused by ${j.paused!.by}${j.paused!.until ? ` until ${displayIso(j.paused!.until, j.tz)}` : " until `jobs resume`"}${j.paused!.note ? `: ${j.paused!.note}` : ""}`),
          ...status.jobs.list.filter((j) => j.owner === null && j.owner_note && j.owner_note !== "no agent is running").map((j) => `          "${j.name}" will not run: ${j.owner_note}`),
          "due next:",
          ...(dueNext.length ? dueNext.map((j) => `  ${j.next_fire} (${relative(j.next_fire, now)}; ${j.next_fire_local} ${j.tz})  ${j.name}${j.owner ? `  (fired by ${j.owner})` : ""}`) : ["  (nothing scheduled)"]),
          "recent failures:",
          ...(failures.length ? failures.map((r) => `  ${r.scheduled_for}  ${r.status.padEnd(6)}  ${r.job}  ${r.error ?? ""}`) : ["  (none)"]),
        ].join("\n"),
      );
    });
  },
});

function indent(text: string): string {
  return text.split("\n").map((l) => `          ${l}`).join("\n");
}
