/**
 * What the live agents report about the jobs, so the CLI does not judge the fleet's jobs with its
 * own config: a CLI on an operator's laptop usually lacks the agents' secrets and may have another
 * `tz`. Agents publish their default zone (`default_tz`) and how many stored jobs they find invalid
 * (`invalid_jobs`) with every heartbeat (src/agent/agent.ts).
 */
import { BUILTIN_NAMES, stringsIn, templateNames } from "../executor/template.ts";
import type { JobDocument, MachineRecord } from "../store/types.ts";

export interface FleetView {
  /** Live agents. */
  alive: number;
  /** The zone the live agents use for jobs without their own `tz`, when they agree; else null. */
  agentsTz: string | null;
  /** Invalid jobs as the live agents count them (the highest count), or null when none reports. */
  invalidReported: number | null;
}

export function fleetViewOf(live: MachineRecord[]): FleetView {
  const zones = [...new Set(live.map((m) => m.default_tz).filter((z): z is string => typeof z === "string"))];
  const counts = live.map((m) => m.invalid_jobs).filter((n): n is number => typeof n === "number");
  return { alive: live.length, agentsTz: zones.length === 1 ? zones[0]! : null, invalidReported: counts.length ? Math.max(...counts) : null };
}

/** Template names a job uses that are neither built-ins nor step outputs nor in `secretKeys`: secrets this config lacks. */
export function secretsMissingHere(doc: JobDocument, secretKeys: readonly string[]): string[] {
  const known = new Set<string>([...BUILTIN_NAMES, ...secretKeys]);
  const names = stringsIn(doc).flatMap(templateNames);
  return [...new Set(names.filter((n) => !known.has(n) && !n.startsWith("steps.")))];
}
