/**
 * One would-be agent for the lock race test: waits (spinning, not sleeping, so the starters are
 * as close together as the machine allows) until the given instant, takes the home's agent lock,
 * prints "held" or "locked", and keeps a lock it won for `holdMs` so the others meet it.
 */
import { acquireAgentLock } from "../../src/agent/lock.ts";

const [home, startAtText, holdMsText] = process.argv.slice(2);
const startAt = Number(startAtText);
while (Date.now() < startAt) {
  // spin
}
try {
  const lock = acquireAgentLock(home!);
  process.stdout.write("held\n");
  await Bun.sleep(Number(holdMsText));
  lock.release();
} catch (error) {
  process.stdout.write(`locked ${(error as { code?: string }).code ?? (error as Error).message}\n`);
}
