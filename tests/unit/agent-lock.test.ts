import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { acquireAgentLock } from "../../src/agent/lock.ts";

/**
 * One agent per home, also when several start at once on a home whose lock a crashed agent left
 * behind (README, "Security"): exactly one of them may hold it. LOCK_TRIALS raises the trial count.
 */

const HOLDER = resolve(import.meta.dir, "../support/lock-holder.ts");
const TRIALS = Number(process.env.LOCK_TRIALS ?? 15);
const root = mkdtempSync(join(tmpdir(), "fleetcron-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A pid no process has any more: a child that already exited. */
async function deadPid(): Promise<number> {
  const proc = Bun.spawn(["true"]);
  await proc.exited;
  return proc.pid;
}

async function race(home: string, starters: number): Promise<string[]> {
  // Far enough ahead that every process is up and spinning before the instant.
  const startAt = Date.now() + 700;
  const procs = Array.from({ length: starters }, () => Bun.spawn([process.execPath, HOLDER, home, String(startAt), "900"], { stdout: "pipe", stderr: "pipe" }));
  return Promise.all(procs.map(async (p) => ((await new Response(p.stdout).text()) + (await new Response(p.stderr).text())).trim()));
}

describe("agent lock", () => {
  test(
    `3 agents starting at once on a home with a stale lock: exactly one holds it (${TRIALS} trials)`,
    async () => {
      const outcomes: string[][] = [];
      for (let trial = 0; trial < TRIALS; trial++) {
        const home = join(root, `stale-${trial}`);
        acquireAgentLock(home).release(); // a home as an agent leaves it…
        writeFileSync(join(home, "agent.lock"), `${await deadPid()}\n`, { mode: 0o600 }); // …after a crash
        outcomes.push(await race(home, 3));
      }
      const holders = outcomes.map((o) => o.filter((line) => line === "held").length);
      const bad = holders.filter((n) => n !== 1).length;
      console.log(`agent lock race: ${TRIALS} trials, ${bad} without exactly one holder (holders per trial: ${holders.join(",")})`);
      for (const o of outcomes) for (const line of o) expect(line === "held" || line === "locked E_LOCKED").toBe(true);
      expect(bad).toBe(0);
    },
    TRIALS * 6000,
  );

  test("a live holder stops a second agent and names its pid; released, the lock is free again", async () => {
    const home = join(root, "live");
    const lock = acquireAgentLock(home);
    try {
      const [second] = await race(home, 1);
      expect(second).toBe("locked E_LOCKED");
      expect(() => acquireAgentLock(home)).toThrow(`another agent (pid ${process.pid}) is already running`);
    } finally {
      lock.release();
    }
    const [third] = await race(home, 1);
    expect(third).toBe("held");
  }, 20_000);

  test("a lock whose holder was killed (SIGKILL) is free at once", async () => {
    const home = join(root, "killed");
    const proc = Bun.spawn([process.execPath, HOLDER, home, "0", "60000"], { stdout: "pipe" });
    const reader = proc.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("held\n");
    proc.kill("SIGKILL");
    await proc.exited;
    const [next] = await race(home, 1);
    expect(next).toBe("held");
  }, 20_000);
});
