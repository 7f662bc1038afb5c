/**
 * FleetCron's own files (its home, database, machine id, lock, logs) are trusted input: a database
 * planted there decides what is sent where, with this user's secrets. So they are kept the way ssh's
 * StrictModes keeps `~/.ssh`: owned by the running user (or root), never writable by group or
 * others, and never reached through a symbolic link. Files are created 0600 and folders 0700; an
 * existing file that is merely readable by others is tightened, one that others could have
 * written is refused with the command that fixes it (README, "Security").
 */
import { chmodSync, closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync, type Stats } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { EXIT_USAGE, FleetCronError } from "./errors.ts";

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Exit 2 at start: the setup is unsafe and only the operator can say it is fine. */
export class UnsafeFileError extends FleetCronError {
  constructor(message: string) {
    super("E_UNSAFE_FILE", message, EXIT_USAGE);
    this.name = "UnsafeFileError";
  }
}

/** Unix only: Windows has no uid or mode bits to check (its ACLs are the installer's business). */
export const checksApply = process.platform !== "win32" && typeof process.getuid === "function";

function currentUid(): number {
  return process.getuid!();
}

export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(currentUid());
  }
}

/** Quoted for a shell when it needs to be, so the printed fix can be pasted. */
export function shellQuote(path: string): string {
  return /^[\w./@%+=:,-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

/** Owned by the running user or by root (who could change anything anyway), as ssh accepts. */
export function ownedBySafeUser(stats: Stats): boolean {
  return stats.uid === currentUid() || stats.uid === 0;
}

/** What is wrong with an existing entry's owner or write bits, with the command that fixes it; null when fine. */
function ownershipProblem(path: string, stats: Stats, what: string, fix: string): string | null {
  if (!ownedBySafeUser(stats)) {
    return `${what} ${path} is owned by uid ${stats.uid}, not by ${currentUser()} (uid ${currentUid()}), so another user could have written it; if its contents are yours, run: chown ${currentUser()} ${shellQuote(path)}`;
  }
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(3, "0");
    if (stats.isDirectory() && (stats.mode & 0o1002) === 0o1002) {
      return `${what} ${path} is shared (mode ${mode}, like /tmp): any user may create files in it before FleetCron does; use a folder of your own`;
    }
    return `${what} ${path} is writable by ${stats.mode & 0o002 ? "all users" : "its group"} (mode ${mode}), so another user could have changed it; check it, then run: chmod ${fix} ${shellQuote(path)}`;
  }
  return null;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/**
 * The folder FleetCron keeps files in: created 0700 when missing; refused when another user owns
 * it or others may write it (they could plant or swap any file inside); tightened to 0700 when only
 * readable by others. The folder itself may be a link (a home on another disk); what it points to is checked.
 */
export function securePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (!checksApply) return;
  const stats = statSync(path);
  if (!stats.isDirectory()) throw new UnsafeFileError(`${path} is not a folder; FleetCron keeps its files there: remove it or choose another FLEETCRON_HOME`);
  const problem = ownershipProblem(path, stats, "folder", "700");
  if (problem) throw new UnsafeFileError(problem);
  if ((stats.mode & 0o077) !== 0 && stats.uid === currentUid()) chmodSync(path, PRIVATE_DIR_MODE);
}

/**
 * A folder that holds one of FleetCron's files but is not its own (the folder of a configured
 * `sqlite_path`): it must not be writable by others, as its owner decides what the file is.
 */
export function checkParentDir(path: string): void {
  if (!checksApply) return;
  const dir = dirname(path);
  const stats = statSync(dir);
  const problem = ownershipProblem(dir, stats, "folder", "go-w");
  // A sticky world-writable folder (/tmp) still lets others create the file before us, or its -wal.
  if (problem) throw new UnsafeFileError(`${problem} (it holds ${path})`);
}

/**
 * An existing file FleetCron reads or writes: never a link, a regular file, owned by this user (or
 * root), not writable by others; tightened to 0600 when readable by others. Missing is fine.
 */
export function checkPrivateFile(path: string): void {
  if (!checksApply) return;
  const stats = lstatOrNull(path);
  if (!stats) return;
  if (stats.isSymbolicLink()) {
    throw new UnsafeFileError(`${path} is a symbolic link; FleetCron never follows links for its own files (one could point it at another user's file): remove it with: rm ${shellQuote(path)}`);
  }
  if (!stats.isFile()) throw new UnsafeFileError(`${path} is not a regular file; remove it (FleetCron creates it)`);
  const problem = ownershipProblem(path, stats, "file", "600");
  if (problem) throw new UnsafeFileError(problem);
  if ((stats.mode & 0o077) !== 0 && stats.uid === currentUid()) chmodSync(path, PRIVATE_FILE_MODE);
}

/**
 * The home at agent start: the folder, every entry directly in it and in its `logs` folder. Names
 * FleetCron reads are also refused as links by `checkPrivateFile`; other entries only need a safe
 * owner and no write access for others (nothing else in the home should be someone else's).
 */
export function securePrivateHome(home: string, ownFiles: readonly string[]): void {
  securePrivateDir(home);
  if (!checksApply) return;
  for (const name of ownFiles) checkPrivateFile(join(home, name));
  for (const dir of [home, join(home, "logs")]) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" && dir !== home) continue;
      throw error;
    }
    if (dir !== home) securePrivateDir(dir);
    for (const name of entries) {
      const path = join(dir, name);
      const stats = lstatSync(path);
      if (stats.isDirectory()) {
        const problem = ownershipProblem(path, stats, "folder", "700");
        if (problem) throw new UnsafeFileError(problem);
      } else if (stats.isFile()) {
        checkPrivateFile(path);
      } else if (!stats.isSymbolicLink() || !ownedBySafeUser(stats)) {
        // A link of ours to elsewhere is left alone unless FleetCron itself reads that name (above).
        const problem = ownershipProblem(path, stats, "entry", "go-w");
        if (problem) throw new UnsafeFileError(problem);
      }
    }
  }
}

/**
 * Creates `path` with `content`, 0600, only if nothing (not even a dangling link) is there: false
 * when something is. `O_EXCL` never follows a link, so nothing is ever created through one.
 */
export function createPrivateFile(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | noFollow(), PRIVATE_FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
  try {
    // The umask only removes bits; set the mode outright so the file is exactly 0600.
    if (checksApply) fchmodSync(fd, PRIVATE_FILE_MODE);
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** The text of an existing private file, opened without following a link; null when missing. */
export function readPrivateFile(path: string): string | null {
  checkPrivateFile(path);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | noFollow());
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw new UnsafeFileError(`${path} is a symbolic link; FleetCron never follows links for its own files: remove it with: rm ${shellQuote(path)}`);
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.min(size, 1 << 20));
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function noFollow(): number {
  return constants.O_NOFOLLOW ?? 0;
}
