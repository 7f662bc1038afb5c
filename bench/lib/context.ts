import type { Ferret } from "./ferret.ts";
import type { Sink } from "./sink.ts";

export interface Plan {
  quick: boolean;
  /** Occurrences per system in the lateness run (one per second). */
  latenessSec: number;
  /** SIGKILLs per fleet in the failover run. */
  kills: number;
  /** Burst sizes on SQLite, and on FerretDB (FleetCron and Agenda). */
  burstSizes: number[];
  burstSizesFerret: number[];
  /** Longest wait for one FleetCron burst to be delivered, and for one Agenda burst. */
  burstCapSec: number;
  agendaBurstCapSec: number;
  /** Agenda's default settings in the burst too (at the smallest size). */
  agendaDefaultBurst: boolean;
  idleSec: number;
  /** Longest wait for Agenda's default settings to fail over (its lock lifetime is 10 min). */
  agendaDefaultFailoverCapSec: number;
  /** Mid-run takeover with default settings (lease_sec 30) too, not only tight ones. */
  takeoverDefault: boolean;
  /** Extra bun flags for the agents of the burst run (profiling). */
  profileBurst: boolean;
  /** Window of each fleet-load case (seconds; one occurrence per job per second). */
  fleetLoadSec: number;
  /** Every-second jobs per fleet-load case, each case on 3 agents. */
  fleetLoadJobs: number[];
  /** Burst sizes of the pg-boss and BullMQ peers, and the longest wait for one of their bursts. */
  peerBurstSizes: number[];
  peerBurstCapSec: number;
  /** Workers of the pg-boss bursts (each one costs a wait for a minute boundary). */
  pgbossBurstWorkers: number[];
  /** pg-boss's every-minute rows: instants measured (at least), and kills of the worker that fired. */
  minuteInstants: number;
  minuteKills: number;
}

export interface Context {
  plan: Plan;
  sink: Sink;
  /** FerretDB with its SQLite handler (the store the tests use). */
  ferret: Ferret;
  /** FerretDB with its PostgreSQL handler, or null when PostgreSQL is not reachable (`--no-pg`). */
  ferretPg: Ferret | null;
  /** Why there is no ferretPg, for the report. */
  pgNote?: string;
  /** FerretDBs that stopped answering and were replaced during the run (bench/lib/stores.ts). */
  replacedStores?: string[];
  /** Why the pg-boss / BullMQ rows are not run (PostgreSQL / Redis not answering), or null when they are. */
  peerNotes: { pgboss: string | null; bullmq: string | null };
  /** A fresh database name on the shared FerretDB. */
  db(prefix: string): string;
  /** Where temporary stores live. */
  tmp: string;
  resultsDir: string;
}

// Quick: under 4 minutes on a 2-core machine; the README ("The quick plan's time") has the arithmetic.
export const QUICK_PLAN: Plan = {
  quick: true,
  latenessSec: 20,
  kills: 2,
  burstSizes: [1000],
  burstSizesFerret: [100],
  burstCapSec: 45,
  agendaBurstCapSec: 25,
  agendaDefaultBurst: false,
  idleSec: 15,
  agendaDefaultFailoverCapSec: 15,
  takeoverDefault: false,
  profileBurst: false,
  fleetLoadSec: 12,
  fleetLoadJobs: [1, 50],
  peerBurstSizes: [1000],
  peerBurstCapSec: 40,
  pgbossBurstWorkers: [3],
  minuteInstants: 2,
  minuteKills: 1,
};

export const FULL_PLAN: Plan = {
  quick: false,
  latenessSec: 310,
  kills: 5,
  burstSizes: [1000, 5000, 10000],
  burstSizesFerret: [1000, 5000, 10000],
  burstCapSec: 300,
  agendaBurstCapSec: 120,
  agendaDefaultBurst: true,
  idleSec: 60,
  agendaDefaultFailoverCapSec: 45,
  takeoverDefault: true,
  profileBurst: false,
  fleetLoadSec: 60,
  fleetLoadJobs: [1, 50],
  peerBurstSizes: [1000, 5000],
  peerBurstCapSec: 120,
  pgbossBurstWorkers: [1, 3],
  minuteInstants: 5,
  minuteKills: 5,
};
