import { templateKeys } from "../../config/load.ts";
import { defineCommand } from "citty";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ResolvedConfig } from "../../config/load.ts";
import { EXIT_FAILED, StoreError } from "../../core/errors.ts";
import { redactMongoUri } from "../../store/uri-redact.ts";
import { gatherStatus } from "../../observe/status-data.ts";
import { globalArgs } from "../_globals.ts";
import { judgementNotes } from "../_judged.ts";
import { detailOf, localTime, output, relative, table } from "../_output.ts";
import { loadRuntime, withStore } from "../_runtime.ts";
import { displayIso } from "../../schedule/display.ts";
import { stateOf } from "./machines.ts";

function thisMachineId(config: ResolvedConfig): string | null {
  const idFile = join(config.home, "machine-id");
  return config.machine_id ?? (existsSync(idFile) ? readFileSync(idFile, "utf8").trim() : null);
}

/** The agent of this home, from its lock file: the pid, and whether that process is alive. */
function localAgent(home: string): { pid: number; running: boolean } | null {
  const lock = join(home, "agent.lock");
  if (!existsSync(lock)) return null;
  const pid = Number(readFileSync(lock, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return { pid, running: true };
  } catch {
    return { pid, running: false };
  }
}

/** The local agent's own view (its /healthz), when it serves one: it knows how long the store has been down. */
async function agentHealth(config: ResolvedConfig): Promise<string | null> {
  if (config.http_port === null) return null;
  const host = config.http_host === "0.0.0.0" || config.http_host === "::" ? "127.0.0.1" : config.http_host;
  try {
    const res = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${config.http_port}/healthz`, { signal: AbortSignal.timeout(1500) });
    return `HTTP ${res.status}: ${(await res.text()).trim()}`;
  } catch {
    return null;
  }
}

/** With the store down, what this machine still knows: config, home, its agent, the agent's own health report. */
async function localStatus(error: StoreError): Promise<void> {
  const { config } = loadRuntime({ quietWarnings: true });
  const agent = localAgent(config.home);
  const health = await agentHealth(config);
  const where = config.store.kind === "sqlite" ? config.store.path : redactMongoUri(config.store.uri);
  const data = {
    store: { kind: config.store.kind, location: where, reachable: false, error: error.message },
    config: config.path,
    home: config.home,
    this_machine: { machine_id: thisMachineId(config), agent_pid: agent?.pid ?? null, agent_running: agent?.running ?? false, health },
  };
  output(data, () =>
    [
      `store:    UNREACHABLE — ${error.message}`,
      `config:   ${config.path ?? "(none: defaults)"}`,
      `home:     ${config.home}`,
      `machine:  ${data.this_machine.machine_id ?? "(no agent has run with this home)"}${agent ? ` — local agent pid ${agent.pid} ${agent.running ? "is running" : "is not running (stale lock file)"}` : " — no local agent"}`,
      ...(health ? [`agent:    ${health}`] : []),
      "fleet, jobs and runs are in the store: shown again once it answers",
    ].join("\n"),
  );
  process.exitCode = EXIT_FAILED;
}

export default defineCommand({
  meta: { name: "status", description: "One screen: store, this machine, fleet, jobs due next, recent failures (what is known locally when the store is down)" },
  args: { ...globalArgs },
  async run() {
    try {
      await withStore(async ({ store, config }) => {
        const now = Date.now();
        const thisMachine = thisMachineId(config);
        // The status page (src/observe) shows the same data, gathered by the same function.
        const status = await gatherStatus(store, { now, deadAfterMs: config.dead_after_sec * 1000, defaultTz: config.tz, secretKeys: templateKeys(config), thisMachine });
        const { machines } = status.fleet;
        const self = status.this_machine.agent;
        const invalid = status.jobs.invalid;
        const data = { ...status, fleet: { ...status.fleet, machines: machines.map((m) => ({ ...m, state: stateOf(m) })) }, config: config.path };
        output(data, () =>
          [
            `store:    ${store.kind} ${store.location} (reachable)`,
            `config:   ${config.path ?? "(none: defaults)"}`,
            `machine:  ${thisMachine ?? "(no agent has run with this home)"}${self ? ` — ${stateOf(self)}, serial ${self.serial ?? "-"}, seen ${relative(self.last_seen, now)}` : ""}`,
            `fleet:    ${status.fleet.alive} alive of ${machines.length}${status.fleet.primary ? `, primary ${status.fleet.primary}` : ""}`,
            ...(machines.length
              ? [indent(table(["MACHINE", "SERIAL", "STATE", "LAST SEEN", "CLOCK"], machines.map((m) => [m.machine_id, m.serial, stateOf(m), relative(m.last_seen, now), m.clock_warning ?? (m.clock_offset_ms === null ? null : `${m.clock_offset_ms} ms`)])))]
              : []),
            `jobs:     ${status.jobs.enabled} enabled of ${status.jobs.total}${invalid.length ? `, ${invalid.length} INVALID (skipped: ${invalid.map((j) => `"${j.name}"`).join(", ")})` : ""}`,
            ...judgementNotes(status.jobs.list, config.tz)
              .filter((n) => !n.includes("invalid job(s)"))
              .map((n) => `          ${n}`),
            ...status.jobs.list.filter((j) => j.paused).map((j) => `          "${j.name}" paused by ${j.paused!.by}${j.paused!.until ? ` until ${displayIso(j.paused!.until, j.tz)}` : " until `jobs resume`"}${j.paused!.note ? `: ${j.paused!.note}` : ""}`),
            ...status.jobs.list.filter((j) => j.owner === null && j.owner_note && j.owner_note !== "no agent is running").map((j) => `          "${j.name}" will not run: ${j.owner_note}`),
            "due next:",
            ...(status.due_next.length ? status.due_next.map((j) => `  ${localTime(j.next_fire, j.tz)} ${j.tz} (${relative(j.next_fire, now)})  ${j.name}${j.owner ? `  (fired by ${j.owner})` : ""}`) : ["  (nothing scheduled)"]),
            "recent failures:",
            ...(status.recent_failures.length
              ? status.recent_failures.map((r) => `  ${localTime(r.scheduled_for, config.tz)} (${relative(r.scheduled_for, now)})  ${r.status.padEnd(6)}  ${r.job}  ${detailOf(r.status, r.error)}`)
              : ["  (none)"]),
          ].join("\n"),
        );
      });
    } catch (error) {
      if (error instanceof StoreError) return localStatus(error);
      throw error;
    }
  },
});

function indent(text: string): string {
  return text.split("\n").map((l) => `          ${l}`).join("\n");
}
