import type { ResolvedConfig } from "../config/load.ts";

/**
 * What `reload-config` changed, in words for the agent's log. The agent applies its settings
 * (src/cli/_runtime.ts, agentSettings) and the log level at once; the keys below are bound when
 * the agent starts (the store it opened, the lock of its home, the HTTP server it bound, the log
 * format of its logger), so a change to them is reported as waiting for a restart, never silently kept.
 */
const RESTART_KEYS = ["mongodb_uri", "db_name", "sqlite_path", "home", "machine_id", "http_port", "http_host", "log_format"] as const satisfies readonly (keyof ResolvedConfig)[];

export interface ConfigChanges {
  applied: string[];
  needRestart: string[];
}

const show = (value: unknown): string => (value === null || value === undefined ? "unset" : typeof value === "string" ? value : JSON.stringify(value));

export function configChanges(before: ResolvedConfig, after: ResolvedConfig): ConfigChanges {
  const applied: string[] = [];
  const needRestart: string[] = [];
  const restart = new Set<string>(RESTART_KEYS);
  for (const key of Object.keys(after) as (keyof ResolvedConfig)[]) {
    if (key === "path" || key === "store") continue; // store: its parts are listed by key
    const a = before[key];
    const b = after[key];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    // Secret values never reach a log: only which keys came, went or changed.
    const text =
      key === "secrets"
        ? `secrets (${secretChanges(a as Record<string, string>, b as Record<string, string>)})`
        : key === "mongodb_uri"
          ? "mongodb_uri"
          : `${key} (${show(a)} → ${show(b)})`;
    (restart.has(key) ? needRestart : applied).push(text);
  }
  return { applied, needRestart };
}

function secretChanges(a: Record<string, string>, b: Record<string, string>): string {
  const added = Object.keys(b).filter((k) => !(k in a));
  const removed = Object.keys(a).filter((k) => !(k in b));
  const changed = Object.keys(b).filter((k) => k in a && a[k] !== b[k]);
  return [added.length ? `added ${added.join(", ")}` : "", removed.length ? `removed ${removed.join(", ")}` : "", changed.length ? `changed ${changed.join(", ")}` : ""].filter(Boolean).join("; ");
}
