import { dlopen } from "bun:ffi";
import { closeSync, constants, ftruncateSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { HOME_CONFIG_NAME } from "../config/paths.ts";
import { FleetCronError, EXIT_FAILED } from "../core/errors.ts";
import { checkPrivateFile, createPrivateFile, PRIVATE_FILE_MODE, securePrivateHome } from "../core/private-files.ts";

export const LOCK_FILE_NAME = "agent.lock";

/** Every name FleetCron itself reads or writes in its home: none of them may be a link (README, "Security"). */
export const HOME_FILE_NAMES = [LOCK_FILE_NAME, "machine-id", "fleetcron.db", "fleetcron.db-wal", "fleetcron.db-shm", "fleetcron.db-journal", HOME_CONFIG_NAME] as const;

export interface AgentLock {
  path: string;
  release(): void;
}

/**
 * One agent per home. The home is checked first (owner, modes, no links: core/private-files.ts),
 * then `$FLEETCRON_HOME/agent.lock` is held with flock(2) for the agent's whole life: the kernel
 * drops it when the process ends however it ends, so a lock left by a crash is free again and
 * taking it over is the same single atomic call as taking a fresh one (no "is it stale? then
 * delete it" window in which two starting agents can both win). The file holds the pid, for the
 * message a second agent prints. Where flock is not reachable (Windows), a pid file created
 * exclusively stands in.
 */
export function acquireAgentLock(home: string): AgentLock {
  securePrivateHome(home, HOME_FILE_NAMES);
  const path = join(home, LOCK_FILE_NAME);
  const flock = libcFlock();
  return flock ? flockLock(home, path, flock) : pidFileLock(home, path);
}

const LOCK_EX = 2;
const LOCK_NB = 4;

type Flock = (fd: number, operation: number) => number;

let flockFn: Flock | null | undefined;

function libcFlock(): Flock | null {
  if (flockFn !== undefined) return flockFn;
  flockFn = null;
  if (process.platform === "win32") return null;
  const names = process.platform === "darwin" ? ["libc.dylib", "/usr/lib/libSystem.B.dylib"] : ["libc.so.6", "libc.so"];
  for (const name of names) {
    try {
      const lib = dlopen(name, { flock: { args: ["i32", "i32"], returns: "i32" } });
      flockFn = (fd, op) => lib.symbols.flock(fd, op) as number;
      break;
    } catch {
      // Not this name; try the next, else fall back to the pid file.
    }
  }
  return flockFn;
}

function lockedError(home: string, path: string, pid: number | null): FleetCronError {
  return new FleetCronError(
    "E_LOCKED",
    `another agent${pid ? ` (pid ${pid})` : ""} is already running with home ${home} (lock file ${path}); stop it first, or give this one its own FLEETCRON_HOME`,
    EXIT_FAILED,
  );
}

function flockLock(home: string, path: string, flock: Flock): AgentLock {
  // O_NOFOLLOW: the home check refused a link by this name, and none can appear since (no one else may write the home).
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0), PRIVATE_FILE_MODE);
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    throw lockedError(home, path, readPid(path));
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      // The file stays: removing it while held would let a starter that opened it a moment ago
      // lock the removed file while a third creates and locks a new one. Closing drops the lock.
      ftruncateSync(fd, 0);
      closeSync(fd);
    },
  };
}

/** Without flock: an exclusively created pid file; one whose process is gone is removed and taken. */
function pidFileLock(home: string, path: string): AgentLock {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createPrivateFile(path, `${process.pid}\n`)) {
      return {
        path,
        release() {
          if (readPid(path) === process.pid) rmSync(path, { force: true });
        },
      };
    }
    checkPrivateFile(path);
    const pid = readPid(path);
    if (pid !== null && pid !== process.pid && isAlive(pid)) throw lockedError(home, path, pid);
    rmSync(path, { force: true }); // stale: its process is gone
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
