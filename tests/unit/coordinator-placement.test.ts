import { describe, expect, test } from "bun:test";
import {
  cyrb53Bytes,
  cyrb53Utf8,
  firingOrder,
  isEligible,
  placeAll,
  Placer,
  positionOf,
  rendezvousScore,
  type Member,
  type PlacementMode,
} from "../../src/coordinator/placement.ts";

/** Placement (docs/protocol.md, "Placement"): pure functions, so plain tables and seeded fuzzing. */

function member(machineId: string, over: Partial<Member> = {}): Member {
  return { machineId, serial: null, tags: {}, live: true, ready: true, ...over };
}

/** Small deterministic PRNG (mulberry32) so the fuzz cases are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(rand: () => number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}

/** Job ids shaped like MongoDB ObjectIds; machine ids shaped like loadMachineId's. */
function jobIds(n: number, seed = 1): string[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => hex(rand, 24));
}
function machines(n: number, seed = 2): Member[] {
  const rand = rng(seed);
  return Array.from({ length: n }, (_, i) => member(`host-${String(i + 1).padStart(2, "0")}-${hex(rand, 8)}`));
}

describe("rendezvousScore is the same everywhere", () => {
  test("cyrb53 matches its published reference values", () => {
    // From the cyrb53 reference (bryc/code, jshash/experimental/cyrb53.js), seed 0.
    expect(cyrb53Utf8("a")).toBe(7929297801672961);
    expect(cyrb53Utf8("b")).toBe(8684336938537663);
    expect(cyrb53Utf8("revenge")).toBe(4051478007546757);
    expect(cyrb53Utf8("revenue")).toBe(8309097637345594);
  });

  test("golden scores: a change here moves every job of every fleet at upgrade", () => {
    // Also checked against an independent Python implementation over the UTF-8 bytes.
    expect(rendezvousScore("65f1c0a2b3d4e5f601234567", "web-01-3f9a2c1d")).toBe(4342248973805664);
    expect(rendezvousScore("65f1c0a2b3d4e5f601234567", "web-02-8e41b7a0")).toBe(8751490640429867);
    expect(rendezvousScore("nightly-report", "eu-west-1a")).toBe(6164718862329160);
    expect(rendezvousScore("limit:billing-api", "ü-machine-☃")).toBe(7505718240599111);
    expect(rendezvousScore("", "")).toBe(4446763975410778);
  });

  test("hashes the UTF-8 bytes of key + NUL + machine id, as TextEncoder encodes them", () => {
    const enc = new TextEncoder();
    const cases = ["", "a", "é", "€uro", "日本語", "emoji 🚀 and 👩‍💻", "lone \ud800 high", "lone \udc00 low", "end \ud83d", "\u07ff\u0800\uffff"];
    for (const s of cases) expect(cyrb53Utf8(s)).toBe(cyrb53Bytes(enc.encode(s)));
    for (const k of cases) for (const m of ["m1", "ü-☃", "🚀"]) expect(rendezvousScore(k, m)).toBe(cyrb53Bytes(enc.encode(`${k}\0${m}`)));
  });

  test("scores are integers in [0, 2^53) and the key/machine boundary matters", () => {
    const rand = rng(7);
    for (let i = 0; i < 1000; i++) {
      const s = rendezvousScore(hex(rand, 24), hex(rand, 8));
      expect(Number.isSafeInteger(s) && s >= 0).toBe(true);
    }
    expect(rendezvousScore("ab", "c")).not.toBe(rendezvousScore("a", "bc"));
  });
});

describe("isEligible", () => {
  const eu = member("m-eu", { tags: { region: "eu", gpu: "yes" } });
  const us = member("m-us", { tags: { region: "us" } });
  const bare = member("m-bare");

  test("no run_on (null, undefined, {}) means any member", () => {
    for (const m of [eu, us, bare]) {
      expect(isEligible(m)).toBe(true);
      expect(isEligible(m, null)).toBe(true);
      expect(isEligible(m, {})).toBe(true);
    }
  });

  test("every key of run_on must equal the member's tag", () => {
    expect(isEligible(eu, { region: "eu" })).toBe(true);
    expect(isEligible(eu, { region: "eu", gpu: "yes" })).toBe(true);
    expect(isEligible(eu, { region: "eu", gpu: "no" })).toBe(false);
    expect(isEligible(us, { region: "eu" })).toBe(false);
    expect(isEligible(us, { region: "us", gpu: "yes" })).toBe(false); // missing tag
    expect(isEligible(bare, { region: "eu" })).toBe(false);
    expect(isEligible(eu, { region: "EU" })).toBe(false); // exact, case-sensitive
  });

  test("inherited object properties are not tags", () => {
    expect(isEligible(bare, { constructor: "x" })).toBe(false);
    expect(isEligible(bare, { toString: "x" })).toBe(false);
    const inherits = member("m-proto", { tags: Object.create({ region: "eu" }) as Record<string, string> });
    expect(isEligible(inherits, { region: "eu" })).toBe(false);
  });

  test("firingOrder and positionOf honour run_on", () => {
    const ms = [eu, us, bare];
    for (const mode of ["spread", "serial"] as const) {
      expect(firingOrder("job", ms, mode, { region: "eu" })).toEqual(["m-eu"]);
      expect(positionOf("m-eu", "job", ms, mode, { region: "eu" })).toBe(0);
      expect(positionOf("m-us", "job", ms, mode, { region: "eu" })).toBeNull();
      expect(firingOrder("job", ms, mode, { region: "mars" })).toEqual([]);
      expect(new Placer(ms, mode).owner("job", { region: "mars" })).toBeNull();
      expect(firingOrder("job", ms, mode).sort()).toEqual(["m-bare", "m-eu", "m-us"]);
    }
  });
});

describe("spread order", () => {
  test("descending rendezvous score, whatever the members' array order", () => {
    const ms = machines(8);
    for (const key of jobIds(50)) {
      const order = firingOrder(key, ms, "spread");
      expect(order).toHaveLength(8);
      const scores = order.map((id) => rendezvousScore(key, id));
      for (let i = 1; i < scores.length; i++) expect(scores[i - 1]!).toBeGreaterThan(scores[i]!);
      expect(firingOrder(key, [...ms].reverse(), "spread")).toEqual(order);
    }
  });

  test("different keys get different owners and different standby orders", () => {
    const ms = machines(5);
    const owners = new Set(jobIds(100).map((k) => firingOrder(k, ms, "spread")[0]));
    expect(owners.size).toBe(5);
    const seconds = new Set(jobIds(100).map((k) => firingOrder(k, ms, "spread")[1]));
    expect(seconds.size).toBe(5);
  });
});

describe("serial order", () => {
  test("serial holders ascending, then members without a serial by machine id; the key is ignored", () => {
    const ms = [
      member("zeta", { serial: 3 }),
      member("delta"),
      member("alpha", { serial: 7 }),
      member("beta"),
      member("omega", { serial: 1 }),
    ];
    const expected = ["omega", "zeta", "alpha", "beta", "delta"];
    for (const key of ["a", "b", ...jobIds(20)]) expect(firingOrder(key, ms, "serial")).toEqual(expected);
    expect(expected.map((id) => positionOf(id, "k", ms, "serial"))).toEqual([0, 1, 2, 3, 4]);
  });

  test("a dead lowest serial hands everything to the next serial", () => {
    const ms = [member("a", { serial: 1, live: false }), member("b", { serial: 2 }), member("c")];
    expect(firingOrder("k", ms, "serial")).toEqual(["b", "c"]);
    expect(placeAll(jobIds(100), ms, "serial").owners.every((o) => o === "b")).toBe(true);
  });
});

describe("only live and ready members fire", () => {
  for (const mode of ["spread", "serial"] as const) {
    test(`${mode}: dead and not-ready members are left out, and positionOf says null for them`, () => {
      const ms = [
        member("up-1", { serial: 1 }),
        member("dead", { serial: 2, live: false }),
        member("loading", { serial: 3, ready: false }),
        member("up-2", { serial: 4 }),
      ];
      for (const key of jobIds(30)) {
        const order = firingOrder(key, ms, mode);
        expect([...order].sort()).toEqual(["up-1", "up-2"]);
        expect(positionOf("dead", key, ms, mode)).toBeNull();
        expect(positionOf("loading", key, ms, mode)).toBeNull();
        expect(positionOf("stranger", key, ms, mode)).toBeNull();
        expect(positionOf(order[1]!, key, ms, mode)).toBe(1);
      }
      expect(firingOrder("k", [member("x", { live: false }), member("y", { ready: false })], mode)).toEqual([]);
    });
  }
});

describe("every entry point agrees", () => {
  for (const mode of ["spread", "serial"] as const satisfies readonly PlacementMode[]) {
    test(`${mode}: firingOrder, positionOf, Placer and placeAll give the same answers (seeded fuzz)`, () => {
      const rand = rng(mode === "spread" ? 11 : 12);
      const regions = ["eu", "us", "ap"];
      for (let round = 0; round < 40; round++) {
        const n = 1 + Math.floor(rand() * 12);
        const ms: Member[] = Array.from({ length: n }, (_, i) =>
          member(`m${i}-${hex(rand, 4)}`, {
            serial: rand() < 0.6 ? 1 + Math.floor(rand() * 20) : null,
            tags: rand() < 0.8 ? { region: regions[Math.floor(rand() * 3)]! } : {},
            live: rand() < 0.85,
            ready: rand() < 0.9,
          }),
        );
        const placer = new Placer(ms, mode);
        const out = new Int32Array(n);
        const keys = jobIds(25, round + 100);
        const runOn = rand() < 0.5 ? null : { region: regions[Math.floor(rand() * 3)]! };
        const target = ms[Math.floor(rand() * n)]!.machineId;
        const all = placeAll(keys, ms, mode, { runOn, positionsFor: target });
        keys.forEach((key, i) => {
          const order = firingOrder(key, ms, mode, runOn);
          expect(order).toEqual(ms.filter((m) => m.live && m.ready && isEligible(m, runOn)).map((m) => m.machineId).sort((a, b) => order.indexOf(a) - order.indexOf(b)));
          expect(placer.order(key, runOn)).toEqual(order);
          const count = placer.orderInto(key, runOn, out);
          expect(Array.from(out.subarray(0, count), (j) => ms[j]!.machineId)).toEqual(order);
          expect(placer.owner(key, runOn)).toBe(order[0] ?? null);
          expect(all.owners[i]).toBe(order[0] ?? null);
          const expectedTarget = order.indexOf(target);
          expect(all.positions![i]).toBe(expectedTarget);
          for (const m of ms) {
            const at = order.indexOf(m.machineId);
            expect(positionOf(m.machineId, key, ms, mode, runOn)).toBe(at === -1 ? null : at);
            expect(placer.position(m.machineId, key, runOn)).toBe(at === -1 ? null : at);
          }
        });
      }
    });
  }
});

describe("rendezvous moves only what it must", () => {
  const keys = jobIds(10_000, 21);
  const ten = machines(10, 22);

  test("a member leaving moves ≈ 1/N of the jobs, only its own, each to its next in order", () => {
    for (const leaving of [ten[0]!, ten[4]!, ten[9]!]) {
      const before = placeAll(keys, ten, "spread").owners;
      const rest = ten.map((m) => (m === leaving ? { ...m, live: false } : m));
      const after = placeAll(keys, rest, "spread").owners;
      let moved = 0;
      keys.forEach((key, i) => {
        if (before[i] === after[i]) return;
        moved++;
        expect(before[i]).toBe(leaving.machineId);
        expect(after[i]).toBe(firingOrder(key, ten, "spread")[1]!);
      });
      expect(before.filter((o) => o === leaving.machineId)).toHaveLength(moved);
      expect(moved / keys.length).toBeGreaterThan(0.07);
      expect(moved / keys.length).toBeLessThan(0.13);
    }
  });

  test("a member joining takes ≈ 1/N of the jobs (N = after), and only jobs move to it", () => {
    const before = placeAll(keys, ten, "spread").owners;
    const joiner = member("host-11-newcomer");
    const after = placeAll(keys, [...ten, joiner], "spread").owners;
    let moved = 0;
    keys.forEach((_, i) => {
      if (before[i] === after[i]) return;
      moved++;
      expect(after[i]).toBe(joiner.machineId);
    });
    expect(moved / keys.length).toBeGreaterThan(0.07);
    expect(moved / keys.length).toBeLessThan(0.13);
  });

  test("a dead owner's jobs spread over all survivors, not onto one", () => {
    const before = placeAll(keys, ten, "spread").owners;
    const after = placeAll(keys, ten.map((m, i) => (i === 0 ? { ...m, live: false } : m)), "spread").owners;
    const heirs = new Map<string, number>();
    keys.forEach((_, i) => {
      if (before[i] !== after[i]) heirs.set(after[i]!, (heirs.get(after[i]!) ?? 0) + 1);
    });
    expect(heirs.size).toBe(9);
    const total = [...heirs.values()].reduce((a, b) => a + b, 0);
    for (const n of heirs.values()) expect(n / total).toBeGreaterThan(1 / 9 / 2);
  });
});

describe("even spread", () => {
  test("3 members each own 33% ± 3% of 30,000 keys", () => {
    const three = machines(3, 31);
    const owners = placeAll(jobIds(30_000, 32), three, "spread").owners;
    for (const m of three) {
      const share = owners.filter((o) => o === m.machineId).length / owners.length;
      expect(share).toBeGreaterThan(1 / 3 - 0.03);
      expect(share).toBeLessThan(1 / 3 + 0.03);
    }
  });

  test("even with near-identical machine ids and sequential keys", () => {
    const ms = ["a1", "a2", "a3", "a4"].map((id) => member(id));
    const keys = Array.from({ length: 20_000 }, (_, i) => `job-${i}`);
    const owners = placeAll(keys, ms, "spread").owners;
    for (const m of ms) {
      const share = owners.filter((o) => o === m.machineId).length / owners.length;
      expect(Math.abs(share - 0.25)).toBeLessThan(0.02);
    }
  });
});

describe("cost", () => {
  test("50 members × 100,000 keys: every owner (and one machine's positions) well under a second", () => {
    const ms = machines(50, 41);
    const keys = jobIds(100_000, 42);
    placeAll(keys.slice(0, 1000), ms, "spread"); // warm up the JIT
    const started = performance.now();
    const { owners, positions } = placeAll(keys, ms, "spread", { positionsFor: ms[7]!.machineId });
    const ms_ = performance.now() - started;
    expect(owners.filter((o) => o === ms[7]!.machineId).length).toBe(positions!.filter((p) => p === 0).length);
    // Typically ~150 ms; the bound leaves room for a loaded 2-core CI machine.
    expect(ms_).toBeLessThan(1500);
  });
});
