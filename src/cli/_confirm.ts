import { createInterface } from "node:readline/promises";
import { UsageError } from "../core/errors.ts";

/**
 * Asks a yes/no question on the terminal before a destructive write. Without a terminal to ask on
 * (a script, a pipe) the answer must be given up front with `--yes`: guessing either way is wrong.
 */
export async function confirm(question: string, opts: { yes: boolean; flagHint: string }): Promise<boolean> {
  if (opts.yes) return true;
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UsageError(`${question.replace(/\?$/, "")}: pass --yes to confirm (there is no terminal to ask on)${opts.flagHint}`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
