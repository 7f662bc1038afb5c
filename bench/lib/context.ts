import type { Ferret } from "./ferret.ts";
import type { Sink } from "./sink.ts";

export interface Plan {
  quick: boolean;
  /** Occurrences per system in the lateness run (one per second). */
  latenessSec: number;
  /** SIGKILLs per fleet in the failover run. */
  kills: number;
  burstSizes: number[];
  /** Longest wait for one burst to be delivered. */
  burstCapSec: number;
  idleSec: number;
  /** Longest wait for Agenda's default settings to fail over (its lock lifetime is 10 min). */
  agendaDefaultFailoverCapSec: number;
  /** Mid-run takeover with default settings (lease_sec 30) too, not only tight ones. */
  takeoverDefault: boolean;
  /** Extra bun flags for the agents of the burst run (profiling). */
  profileBurst: boolean;
}

export interface Context {
  plan: Plan;
  sink: Sink;
  ferret: Ferret;
  /** A fresh database name on the shared FerretDB. */
  db(prefix: string): string;
  /** Where temporary stores live. */
  tmp: string;
  resultsDir: string;
}

export const QUICK_PLAN: Plan = {
  quick: true,
  latenessSec: 45,
  kills: 3,
  burstSizes: [1000],
  burstCapSec: 45,
  idleSec: 20,
  agendaDefaultFailoverCapSec: 15,
  takeoverDefault: false,
  profileBurst: false,
};

export const FULL_PLAN: Plan = {
  quick: false,
  latenessSec: 310,
  kills: 5,
  burstSizes: [1000, 5000, 10000],
  burstCapSec: 180,
  idleSec: 60,
  agendaDefaultFailoverCapSec: 45,
  takeoverDefault: true,
  profileBurst: false,
};
