import { defineCommand } from "citty";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { listJobSummaries } from "../../control/jobs.ts";
import { machineSummaries } from "../../control/machines.ts";
import { globalArgs } from "../_globals.ts";
import { output, relative, table } from "../_output.ts";
import { withStore } from "../_runtime.ts";

export default defineCommand({
  meta: { name: "status", description: "One screen: store, this machine, fleet, jobs due next, recent failures" },
  args: { ...globalArgs },
  async run() {
    await withStore(async ({ store, config }) => {
      const now = Date.now();
      const idFile = join(config.home, "machine-id");
      const thisMachine = config.machine_id ?? (existsSync(idFile) ? readFileSync(idFile, "utf8").trim() : null);
      const [machines, jobs, failures] = await Promise.all([
        machineSummaries(store, now, config.dead_after_sec * 1000),
        listJobSummaries(store, Object.keys(config.secrets), config.tz, now),
        store.listRuns({ status: "error", limit: 5 }),
      ]);
      const self = machines.find((m) => m.machine_id === thisMachine) ?? null;
      const dueNext = jobs.filter((j) => j.next_fire).sort((a, b) => a.next_fire!.localeCompare(b.next_fire!)).slice(0, 5);
      const invalid = jobs.filter((j) => !j.valid);
      const data = {
        store: { kind: store.kind, location: store.location, reachable: true },
        config: config.path,
        this_machine: { machine_id: thisMachine, agent: self },
        fleet: { alive: machines.filter((m) => m.alive).length, machines },
        jobs: { total: jobs.length, enabled: jobs.filter((j) => j.enabled && j.valid).length, invalid: invalid.map((j) => ({ name: j.name, problems: j.problems })) },
        due_next: dueNext.map((j) => ({ name: j.name, next_fire: j.next_fire })),
        recent_failures: failures.map((r) => ({ job: r.job_name, scheduled_for: r.scheduled_for.toISOString(), machine_id: r.machine_id ?? null, error: r.error ?? r.reason ?? null })),
      };
      output(data, () =>
        [
          `store:    ${store.kind} ${store.location} (reachable)`,
          `config:   ${config.path ?? "(none: defaults)"}`,
          `machine:  ${thisMachine ?? "(no agent has run with this home)"}${self ? ` — ${self.alive ? "alive" : "not alive"}, serial ${self.serial ?? "-"}, seen ${self.seconds_since_seen} s ago` : ""}`,
          `fleet:    ${data.fleet.alive} alive of ${machines.length}`,
          ...(machines.length ? [indent(table(["MACHINE", "SERIAL", "ALIVE", "LAST SEEN", "CLOCK"], machines.map((m) => [m.machine_id, m.serial, m.alive ? "yes" : "no", `${m.seconds_since_seen} s ago`, m.clock_warning ?? (m.clock_offset_ms === null ? null : `${m.clock_offset_ms} ms`)])))] : []),
          `jobs:     ${data.jobs.enabled} enabled of ${jobs.length}${invalid.length ? `, ${invalid.length} INVALID (skipped: ${invalid.map((j) => `"${j.name}"`).join(", ")})` : ""}`,
          "due next:",
          ...(dueNext.length ? dueNext.map((j) => `  ${j.next_fire} (${relative(j.next_fire, now)})  ${j.name}`) : ["  (nothing scheduled)"]),
          "recent failures:",
          ...(failures.length ? failures.map((r) => `  ${r.scheduled_for.toISOString()}  ${r.job_name}  ${r.error ?? r.reason ?? ""}`) : ["  (none)"]),
        ].join("\n"),
      );
    });
  },
});

function indent(text: string): string {
  return text.split("\n").map((l) => `          ${l}`).join("\n");
}
