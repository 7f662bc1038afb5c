import type { ResolvedConfig } from "./load.ts";

/**
 * What a `reload-config` changes (docs/protocol.md, "Commands"): each changed key, and whether the
 * running agent applies it now or keeps its start-up value until a restart. Timing keys are kept:
 * the fence of a running session was derived from them, and changing them under it could break the
 * inequality that makes takeovers safe.
 */
export const RESTART_KEYS = [
  "mongodb_uri",
  "db_name",
  "sqlite_path",
  "machine_id",
  "http_port",
  "http_host",
  "log_format",
  "log_file",
  "log_max_mb",
  "log_keep",
  "heartbeat_sec",
  "dead_after_sec",
  "failover_step_sec",
] as const satisfies readonly (keyof ResolvedConfig)[];

/** Keys whose values are never printed: credentials, or where they are kept. */
const HIDDEN_KEYS = new Set<string>(["mongodb_uri", "secrets", "store"]);

/** Resolved keys that mirror others (compared through those). */
const DERIVED_KEYS = new Set<string>(["store", "path", "home"]);

export interface ConfigChange {
  key: string;
  /** `old → new`, or a count for secrets; never a credential. */
  detail: string;
  applied: boolean;
}

export function configChanges(running: ResolvedConfig, next: ResolvedConfig): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]);
  for (const key of [...keys].sort()) {
    if (DERIVED_KEYS.has(key)) continue;
    const before = (running as unknown as Record<string, unknown>)[key];
    const after = (next as unknown as Record<string, unknown>)[key];
    if (JSON.stringify(before) === JSON.stringify(after)) continue;
    changes.push({ key, detail: detailOf(key, before, after), applied: !(RESTART_KEYS as readonly string[]).includes(key) });
  }
  return changes;
}

/** The config the running agent goes on with: `next`, with the keys that need a restart as they were. */
export function appliedConfig(running: ResolvedConfig, next: ResolvedConfig): ResolvedConfig {
  const kept: Record<string, unknown> = { ...next, store: running.store };
  for (const key of RESTART_KEYS) kept[key] = running[key];
  return kept as unknown as ResolvedConfig;
}

/** What to log: applied changes as information, kept ones as a warning (the operator expected them). */
export function describeConfigChanges(changes: ConfigChange[]): { text: string; warn: boolean }[] {
  if (changes.length === 0) return [{ text: "reload-config: nothing changed", warn: false }];
  const applied = changes.filter((c) => c.applied);
  const kept = changes.filter((c) => !c.applied);
  const lines: { text: string; warn: boolean }[] = [];
  if (applied.length) lines.push({ text: `reload-config: applied ${applied.map((c) => `${c.key} (${c.detail})`).join(", ")}`, warn: false });
  if (kept.length) {
    const list = kept.map((c) => `${c.key} (${c.detail})`).join(", ");
    lines.push({ text: `reload-config: ${list} ${kept.length === 1 ? "needs" : "need"} a restart; the running agent keeps the values it started with`, warn: true });
  }
  return lines;
}

function detailOf(key: string, before: unknown, after: unknown): string {
  if (key === "secrets") {
    const a = (before ?? {}) as Record<string, unknown>;
    const b = (after ?? {}) as Record<string, unknown>;
    const names = new Set([...Object.keys(a), ...Object.keys(b)]);
    const changed = [...names].filter((n) => JSON.stringify(a[n]) !== JSON.stringify(b[n]));
    return `${changed.length} changed: ${changed.sort().join(", ")}; values not shown`;
  }
  if (HIDDEN_KEYS.has(key)) return "changed; value not shown";
  return `${show(before)} → ${show(after)}`;
}

function show(value: unknown): string {
  return value === undefined || value === null ? "unset" : JSON.stringify(value);
}
