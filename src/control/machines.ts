import type { MachineRecord, SerialRecord, Store } from "../store/types.ts";

export function isAlive(machine: MachineRecord, now: number, deadAfterMs: number): boolean {
  return machine.status !== "stopped" && now - machine.last_seen.getTime() < deadAfterMs;
}

export interface MachineSummary {
  machine_id: string;
  hostname: string;
  serial: number | null;
  status: MachineRecord["status"];
  alive: boolean;
  last_seen: string;
  seconds_since_seen: number;
  version: string;
  pid: number;
  clock_offset_ms: number | null;
  /** Set when the clock differs from the store's by more than a second (docs/protocol.md, "Clock skew" in README). */
  clock_warning: string | null;
}

export async function machineSummaries(store: Store, now: number, deadAfterMs: number): Promise<MachineSummary[]> {
  const [machines, serials] = await Promise.all([store.listMachines(), store.listSerials()]);
  const serialOf = new Map<string, SerialRecord>(serials.map((s) => [s.machine_id, s]));
  return machines
    .map((m) => {
      const alive = isAlive(m, now, deadAfterMs);
      const offset = m.clock_offset_ms;
      return {
        machine_id: m._id,
        hostname: m.hostname,
        serial: alive ? (serialOf.get(m._id)?._id ?? m.serial) : null,
        status: m.status,
        alive,
        last_seen: m.last_seen.toISOString(),
        seconds_since_seen: Math.round((now - m.last_seen.getTime()) / 100) / 10,
        version: m.version,
        pid: m.pid,
        clock_offset_ms: offset,
        clock_warning: offset !== null && Math.abs(offset) > 1000 ? `clock differs from the store's by ${(offset / 1000).toFixed(1)} s: check NTP` : null,
      };
    })
    .sort((a, b) => (a.serial ?? 1e9) - (b.serial ?? 1e9) || a.machine_id.localeCompare(b.machine_id));
}
