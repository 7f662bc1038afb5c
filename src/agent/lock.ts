import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { FleetCronError, EXIT_FAILED } from "../core/errors.ts";

/**
 * One agent per home: `$FLEETCRON_HOME/agent.lock` holds the pid. A lock left by a process that no
 * longer exists (a crash, a reboot) is taken over; a live one stops the second agent.
 */
export function acquireAgentLock(home: string): { path: string; release(): void } {
  mkdirSync(home, { recursive: true });
  const path = join(home, "agent.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        path,
        release() {
          if (readPid(path) === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = readPid(path);
      if (pid !== null && pid !== process.pid && isAlive(pid)) {
        throw new FleetCronError(
          "E_LOCKED",
          `another agent (pid ${pid}) is already running with home ${home} (lock file ${path}); stop it first, or give this one its own FLEETCRON_HOME`,
          EXIT_FAILED,
        );
      }
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  throw new FleetCronError("E_LOCKED", `could not take the lock file ${path}`, EXIT_FAILED);
}

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
