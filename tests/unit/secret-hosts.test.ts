/** Where a secret may go, decided before a job runs (issue 11.3): config forms and job validation. */
import { describe, expect, test } from "bun:test";
import { resolveSecrets, validateConfig } from "../../src/config/load.ts";
import { hostAllowed } from "../../src/executor/secret-hosts.ts";
import { parseJobDocument } from "../../src/jobs/schema.ts";

const scope = {
  values: { KEY: "k-123456", BASE: "https://api.example.com", EVIL: "https://evil.test" },
  hosts: { KEY: ["api.example.com"] },
};
const ctx = { secretKeys: ["KEY", "BASE", "EVIL"], secretScope: scope };
const job = (fields: Record<string, unknown>) => ({ name: "J", every: "1m", ...fields });
const problems = (doc: unknown) => {
  const r = parseJobDocument(doc, ctx);
  return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
};

describe("job validation refuses a job that would send a bound secret elsewhere", () => {
  test("in the URL, a header or the body", () => {
    expect(problems(job({ url: "https://evil.test/x?k={{KEY}}" }))).toEqual([
      'url: would send secret "KEY" to "evil.test", but secrets.KEY.hosts allows only "api.example.com"',
    ]);
    expect(problems(job({ url: "{{EVIL}}/x", headers: { "X-Key": "{{KEY}}" } }))[0]).toStartWith('headers.X-Key: would send secret "KEY" to "evil.test"');
    expect(problems(job({ url: "https://evil.test/x", method: "POST", body: { k: "{{KEY}}" } }))[0]).toStartWith('body.k: would send secret "KEY"');
  });

  test("userinfo does not fool the host: api.example.com@evil.test goes to evil.test", () => {
    expect(problems(job({ url: "https://api.example.com@evil.test/?k={{KEY}}" }))[0]).toContain('to "evil.test"');
  });

  test("allowed hosts, and hosts only a step's response decides, pass (the run checks those)", () => {
    expect(problems(job({ url: "{{BASE}}/x?k={{KEY}}" }))).toEqual([]);
    expect(problems(job({ actions: [{ url: "{{BASE}}/login" }, { url: "{{steps.step1.json.next}}?k={{KEY}}" }] }))).toEqual([]);
  });

  test("job-level headers inherited by an action are checked at that action's host", () => {
    const doc = job({ headers: { "X-Key": "{{KEY}}" }, actions: [{ url: "{{BASE}}/a" }, { url: "https://evil.test/b" }] });
    expect(problems(doc)).toEqual(['headers.X-Key: would send secret "KEY" to "evil.test", but secrets.KEY.hosts allows only "api.example.com"']);
  });

  test("an OAuth2 client secret is checked at its token_url", () => {
    const auth = { type: "oauth2_client_credentials", token_url: "https://evil.test/token", client_id: "c", client_secret: "{{KEY}}" };
    expect(problems(job({ url: "{{BASE}}/x", auth }))[0]).toStartWith('auth.client_secret: would send secret "KEY" to "evil.test"');
  });
});

describe("config", () => {
  const load = (file: Record<string, unknown>, env: Record<string, string> = {}) => {
    const { file: parsed } = validateConfig(file, "c.json");
    return resolveSecrets(parsed, env, "c.json");
  };

  test('{ "value", "hosts" } and plain strings; env values keep the file\'s hosts', () => {
    const r = load({ secrets: { A: "plain", B: { value: "bee", hosts: ["API.example.com", "*.corp.test"] }, C: { hosts: ["c.test"] } } }, { C: "from-env" });
    expect(r.secrets).toEqual({ A: "plain", B: "bee", C: "from-env" });
    expect(r.secret_hosts).toEqual({ B: ["api.example.com", "*.corp.test"], C: ["c.test"] });
  });

  test("strict_secrets requires hosts on every secret, file or environment", () => {
    expect(() => load({ strict_secrets: true, secrets: { A: "plain" } })).toThrow('c.json: secrets.A.hosts: is required by strict_secrets');
    expect(() => load({ strict_secrets: true, secrets: {} }, { E: "x" })).toThrow("FLEETCRON_SECRET_E has no hosts");
    expect(load({ strict_secrets: true, secrets: { A: { value: "v", hosts: ["a.test"] } } }).secrets).toEqual({ A: "v" });
  });

  test("a name in both vars and secrets is a config error; a secret value never shows in a problem", () => {
    expect(() => load({ vars: { BASE: "https://x.test" }, secrets: { BASE: "s" } })).toThrow("c.json: vars.BASE: is also a secret");
    let message = "";
    try {
      validateConfig({ secrets: { A: { value: "hunter2-value", hosts: "nope" } } }, "c.json");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("secrets.A");
    expect(message).not.toContain("hunter2-value");
  });

  test("host patterns", () => {
    expect(hostAllowed("API.example.com", ["api.example.com"])).toBe(true);
    expect(hostAllowed("a.corp.test", ["*.corp.test"])).toBe(true);
    expect(hostAllowed("corp.test", ["*.corp.test"])).toBe(false);
    expect(hostAllowed("evilcorp.test", ["*.corp.test"])).toBe(false);
    expect(hostAllowed("api.example.com.evil.test", ["api.example.com"])).toBe(false);
  });
});

describe("the agent's job set", () => {
  test("a stored job (written by a database user) that would send a bound secret elsewhere is set aside", async () => {
    const { loadJobSet } = await import("../../src/agent/job-set.ts");
    const docs = [
      { _id: "j1", name: "steal", every: "1m", url: "https://evil.test/?k={{KEY}}" },
      { _id: "j2", name: "fine", every: "1m", url: "{{BASE}}/?k={{KEY}}" },
    ];
    const set = await loadJobSet({ listJobs: async () => docs as never }, ctx.secretKeys, scope);
    expect([...set.jobs.values()].map((j) => j.name)).toEqual(["fine"]);
    expect(set.invalid.map((j) => `${j.name}: ${j.problems[0]!.message}`)).toEqual(['steal: would send secret "KEY" to "evil.test", but secrets.KEY.hosts allows only "api.example.com"']);
  });
});
