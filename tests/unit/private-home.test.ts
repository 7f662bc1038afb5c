import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireAgentLock } from "../../src/agent/lock.ts";
import { loadMachineId } from "../../src/agent/machine-id.ts";
import { EXIT_USAGE } from "../../src/core/errors.ts";
import { UnsafeFileError } from "../../src/core/private-files.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";

/**
 * The home and its files (README, "Security"): created 0700 / 0600, refused (exit 2, with the fix)
 * when another user owns them or may write them, never reached through a link. Tests that hand a
 * file to another user need root (chown); elsewhere they are reported skipped.
 */

const root = mkdtempSync(join(tmpdir(), "fleetcron-home-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshHome = () => join(root, `home-${++n}`);
const mode = (path: string) => statSync(path).mode & 0o777;
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

function refusal(fn: () => unknown): UnsafeFileError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UnsafeFileError);
    expect((error as UnsafeFileError).exitCode).toBe(EXIT_USAGE);
    return error as UnsafeFileError;
  }
  throw new Error("expected a refusal, but it was accepted");
}

describe("files an agent creates", () => {
  test("home 0700; database, -wal, -shm, machine-id and lock 0600", async () => {
    const home = freshHome();
    const lock = acquireAgentLock(home);
    loadMachineId(home);
    const store = openSqliteStore(join(home, "fleetcron.db"));
    await store.createJob({ name: "x", every: "1m", url: "http://127.0.0.1/" });
    try {
      expect(mode(home)).toBe(0o700);
      for (const name of ["fleetcron.db", "fleetcron.db-wal", "fleetcron.db-shm", "machine-id", "agent.lock"]) {
        expect(existsSync(join(home, name))).toBe(true);
        expect([name, mode(join(home, name)).toString(8)]).toEqual([name, "600"]);
      }
    } finally {
      await store.close();
      lock.release();
    }
  });

  test("an existing home and files readable by others (an older version's) are tightened", () => {
    const home = freshHome();
    mkdirSync(join(home, "logs"), { recursive: true });
    chmodSync(home, 0o755);
    writeFileSync(join(home, "machine-id"), "m-1\n", { mode: 0o644 });
    writeFileSync(join(home, "logs", "fleetcron.log"), "", { mode: 0o644 });
    acquireAgentLock(home).release();
    expect(mode(home)).toBe(0o700);
    expect(mode(join(home, "machine-id"))).toBe(0o600);
    expect(mode(join(home, "logs", "fleetcron.log"))).toBe(0o600);
  });
});

describe("refused at start (as ssh's StrictModes)", () => {
  test("a home writable by all users: exit 2 with the chmod to run", () => {
    const home = freshHome();
    mkdirSync(home);
    chmodSync(home, 0o777);
    const error = refusal(() => acquireAgentLock(home));
    expect(error.message).toContain(`chmod 700 ${home}`);
    expect(error.message).toContain("writable by all users (mode 777)");
  });

  test("a group-writable file in the home: exit 2 with chmod 600", () => {
    const home = freshHome();
    acquireAgentLock(home).release();
    const db = join(home, "fleetcron.db");
    writeFileSync(db, "");
    chmodSync(db, 0o664);
    expect(refusal(() => acquireAgentLock(home)).message).toContain(`chmod 600 ${db}`);
    expect(refusal(() => openSqliteStore(db)).message).toContain(`chmod 600 ${db}`);
  });

  test.skipIf(!isRoot)(`a home owned by another user: exit 2 with the chown to run${isRoot ? "" : " — SKIPPED, needs root to chown"}`, () => {
    const home = freshHome();
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, NOBODY, NOBODY);
    const error = refusal(() => acquireAgentLock(home));
    expect(error.message).toContain(`owned by uid ${NOBODY}`);
    expect(error.message).toMatch(new RegExp(`chown \\S+ ${home}`));
  });

  test.skipIf(!isRoot)(`a database planted by another user in the home is never opened${isRoot ? "" : " — SKIPPED, needs root to chown"}`, () => {
    const home = freshHome();
    acquireAgentLock(home).release();
    const db = join(home, "fleetcron.db");
    writeFileSync(db, "", { mode: 0o600 });
    chownSync(db, NOBODY, NOBODY);
    expect(refusal(() => acquireAgentLock(home)).message).toContain(`file ${db} is owned by uid ${NOBODY}`);
    expect(refusal(() => openSqliteStore(db)).message).toContain(`chown`);
  });

  test("a sqlite_path in a shared folder (like /tmp) is refused", () => {
    const shared = join(root, `shared-${++n}`);
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    expect(refusal(() => openSqliteStore(join(shared, "fleet.db"))).message).toContain("any user may create files in it");
  });
});

describe("never through a link", () => {
  test("a machine-id linked to a root-only file is refused, its contents never read", () => {
    const home = freshHome();
    acquireAgentLock(home).release();
    const secret = join(root, `shadow-${++n}`);
    writeFileSync(secret, "root:$6$secret-hash\n", { mode: 0o600 });
    symlinkSync(secret, join(home, "machine-id"));
    const error = refusal(() => loadMachineId(home));
    expect(error.message).toContain("is a symbolic link");
    expect(error.message).not.toContain("secret-hash");
    expect(refusal(() => acquireAgentLock(home)).message).toContain("machine-id is a symbolic link");
  });

  test("a dangling fleetcron.db link makes nothing be created at its target", () => {
    const home = freshHome();
    acquireAgentLock(home).release();
    const target = join(root, `elsewhere-${++n}.db`);
    symlinkSync(target, join(home, "fleetcron.db"));
    expect(refusal(() => openSqliteStore(join(home, "fleetcron.db"))).message).toContain("is a symbolic link");
    expect(refusal(() => acquireAgentLock(home)).message).toContain("fleetcron.db is a symbolic link");
    expect(existsSync(target)).toBe(false);
    expect(lstatSync(join(home, "fleetcron.db")).isSymbolicLink()).toBe(true);
  });

  test("an agent.lock link is refused, not opened", () => {
    const home = freshHome();
    mkdirSync(home, { mode: 0o700 });
    const target = join(root, `victim-${++n}`);
    writeFileSync(target, "keep me\n");
    symlinkSync(target, join(home, "agent.lock"));
    expect(refusal(() => acquireAgentLock(home)).message).toContain("agent.lock is a symbolic link");
    expect(readFileSync(target, "utf8")).toBe("keep me\n");
  });
});
