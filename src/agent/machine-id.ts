import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/**
 * A machine keeps its id across restarts (stored in its home), so `machines` shows one entry per
 * machine, not one per start. The config's `machine_id` wins when set.
 */
export function loadMachineId(home: string, configured?: string | null): string {
  if (configured) return configured;
  const file = join(home, "machine-id");
  if (existsSync(file)) {
    const id = readFileSync(file, "utf8").trim();
    if (id) return id;
  }
  mkdirSync(home, { recursive: true });
  const short = hostname().replace(/[^A-Za-z0-9-]/g, "-").slice(0, 40) || "host";
  const id = `${short}-${crypto.randomUUID().slice(0, 8)}`;
  writeFileSync(file, `${id}\n`);
  return id;
}
