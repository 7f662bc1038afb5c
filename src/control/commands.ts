import type { Clock } from "../core/clock.ts";
import type { CommandAck, CommandRecord, CommandType, MachineRecord, Store } from "../store/types.ts";
import { isAlive } from "./machines.ts";

/** Inserts a command for every agent (target null) or one machine; agents apply it within a heartbeat. */
export async function sendCommand(store: Store, type: CommandType, target: string | null, now: number, fields: Pick<CommandRecord, "job_id" | "run_id"> = {}): Promise<string> {
  const id = `${new Date(now).toISOString()}-${type}-${crypto.randomUUID().slice(0, 8)}`;
  await store.insertCommand({ _id: id, type, target, created_at: new Date(now), ...fields });
  return id;
}

export interface AckReport {
  command_id: string;
  acked: CommandAck[];
  /** Live targets that did not acknowledge before the deadline. */
  silent: string[];
  /** Targets that are not alive (stopped, or not heard from for dead_after_sec): not waited for. */
  dead: { machine_id: string; last_seen: string; status: MachineRecord["status"] }[];
}

/** Waits until every live target has acknowledged, or the deadline passes. */
export async function waitForAcks(
  store: Store,
  commandId: string,
  target: string | null,
  opts: { clock: Clock; timeoutMs: number; deadAfterMs: number; pollMs?: number },
): Promise<AckReport> {
  const deadline = opts.clock.now() + opts.timeoutMs;
  for (;;) {
    const now = opts.clock.now();
    const machines = (await store.listMachines()).filter((m) => target === null || m._id === target);
    const acked = await store.listAcks(commandId);
    const ackedBy = new Set(acked.map((a) => a.machine_id));
    const live = machines.filter((m) => isAlive(m, now, opts.deadAfterMs));
    const dead = machines
      .filter((m) => !isAlive(m, now, opts.deadAfterMs) && !ackedBy.has(m._id))
      .map((m) => ({ machine_id: m._id, last_seen: m.last_seen.toISOString(), status: m.status }));
    const silent = live.filter((m) => !ackedBy.has(m._id)).map((m) => m._id);
    if (silent.length === 0 || now >= deadline) return { command_id: commandId, acked, silent, dead };
    await opts.clock.sleep(Math.min(opts.pollMs ?? 250, Math.max(0, deadline - now)));
  }
}
