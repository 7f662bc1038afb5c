import { rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { createPrivateFile, readPrivateFile, securePrivateDir } from "../core/private-files.ts";

/**
 * A machine keeps its id across restarts (stored in its home), so `machines` shows one entry per
 * machine, not one per start. The config's `machine_id` wins when set. The file is read and
 * created without following a link (a `machine-id` linked to a root-only file would publish its
 * first line as this machine's id) and is created 0600.
 */
export function loadMachineId(home: string, configured?: string | null): string {
  if (configured) return configured;
  securePrivateDir(home);
  const file = join(home, "machine-id");
  for (let attempt = 0; attempt < 2; attempt++) {
    const id = readPrivateFile(file)?.trim();
    if (id) return id;
    // Left empty by a crash between creating and writing it.
    if (id === "") rmSync(file, { force: true });
    const short = hostname().replace(/[^A-Za-z0-9-]/g, "-").slice(0, 40) || "host";
    const fresh = `${short}-${crypto.randomUUID().slice(0, 8)}`;
    // Exclusive: two commands starting at once on a new home agree on the id the first one wrote.
    if (createPrivateFile(file, `${fresh}\n`)) return fresh;
  }
  throw new Error(`could not create ${file}; remove it and FleetCron writes a new machine id`);
}
