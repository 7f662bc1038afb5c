import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FailureThrottle, TokenSet, bearerToken } from "../../src/api/auth.ts";
import { isLoopbackHost, requireTokensOffLoopback } from "../../src/cli/commands/run.ts";
import { loadConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/core/errors.ts";

/** Issue 15: config `api_tokens`, the token check, and the refusal to serve the network without tokens. */
let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "fleetcron-api-config-"))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function load(config: unknown) {
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
  return loadConfig({ flag: path, env: { FLEETCRON_HOME: join(dir, "home") }, cwd: dir, version: "test" }).config;
}

function problemsOf(config: unknown): string {
  try {
    load(config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a config error");
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

describe("api_tokens", () => {
  test("a token or its SHA-256, with a role; only the digest is kept", () => {
    const config = load({ api_tokens: { deploy: { token: "deploy-token-0123456789", role: "admin" }, grafana: { token_sha256: sha("grafana-token-0123456").toUpperCase(), role: "read" } } });
    expect(config.api_tokens).toEqual([
      { name: "deploy", role: "admin", sha256: sha("deploy-token-0123456789") },
      { name: "grafana", role: "read", sha256: sha("grafana-token-0123456") },
    ]);
    expect(JSON.stringify(config)).not.toContain("deploy-token-0123456789");
    expect(load({}).api_tokens).toEqual([]);
  });

  test("every problem named by path, and a token's value never echoed", () => {
    const message = problemsOf({
      api_tokens: {
        short: { token: "tooshort-secret", role: "admin" },
        both: { token: "long-enough-token-000", token_sha256: sha("x"), role: "read" },
        neither: { role: "read" },
        badrole: { token: "long-enough-token-111", role: "root" },
        "bad name": { token: "long-enough-token-222", role: "read" },
        extra: { token: "long-enough-token-333", role: "read", scope: "all" },
      },
    });
    expect(message).toContain("api_tokens.short.token: must be a string of at least 16 characters");
    expect(message).not.toContain("tooshort-secret");
    expect(message).toContain('api_tokens.both: needs exactly one of "token" and "token_sha256"');
    expect(message).toContain('api_tokens.neither: needs exactly one of "token" and "token_sha256"');
    expect(message).toContain('api_tokens.badrole.role: must be one of "read", "operate", "admin"');
    expect(message).toContain("token names are 1-64 letters");
    expect(message).toContain("api_tokens.extra");
  });
});

describe("token checks", () => {
  const tokens = new TokenSet([
    { name: "a", role: "read", sha256: sha("token-a-0123456789") },
    { name: "b", role: "admin", sha256: sha("token-b-0123456789") },
  ]);

  test("the owner of a right token, null for anything else", () => {
    expect(tokens.verify("token-b-0123456789")).toEqual({ name: "b", role: "admin" });
    expect(tokens.verify("token-a-0123456789")).toEqual({ name: "a", role: "read" });
    expect(tokens.verify("token-b-012345678")).toBeNull();
    expect(tokens.verify("")).toBeNull();
    expect(new TokenSet([]).configured).toBe(false);
  });

  test("Authorization: Bearer only", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer  abc ")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeNull();
    expect(bearerToken("Bearer a b")).toBeNull();
    expect(bearerToken(null)).toBeNull();
  });

  test("failures are forgotten after a quiet while, and the table of addresses is bounded", () => {
    const throttle = new FailureThrottle({ freeFailures: 1, baseDelayMs: 100, forgetAfterMs: 1000, maxAddresses: 2 });
    throttle.fail("x", 0);
    throttle.fail("x", 10);
    expect(throttle.delayFor("x", 20)).toBe(200);
    expect(throttle.delayFor("x", 2000)).toBe(0);
    throttle.fail("p", 0);
    throttle.fail("p", 0);
    throttle.fail("q", 0);
    throttle.fail("r", 0);
    expect(throttle.delayFor("p", 1)).toBe(0); // the oldest address was dropped
    expect(throttle.delayFor("r", 1)).toBe(100); // past the free failure: the next attempt waits
    throttle.succeed("r");
    expect(throttle.delayFor("r", 1)).toBe(0);
  });
});

describe("off loopback", () => {
  test("loopback hosts", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect([host, isLoopbackHost(host)]).toEqual([host, true]);
    for (const host of ["0.0.0.0", "::", "10.0.0.5", "example.com", "128.0.0.1"]) expect([host, isLoopbackHost(host)]).toEqual([host, false]);
  });

  test("an HTTP server off loopback without tokens is refused, saying what to add; with a token or no server it is fine", () => {
    const off = load({ http_port: 8080, http_host: "0.0.0.0" });
    expect(() => requireTokensOffLoopback(off)).toThrow(/http_host "0\.0\.0\.0" is not a loopback address and no api_tokens are configured.*"api_tokens": \{"ops"/);
    expect(() => requireTokensOffLoopback(load({ http_port: null, http_host: "0.0.0.0" }))).not.toThrow();
    expect(() => requireTokensOffLoopback(load({ http_port: 8080 }))).not.toThrow();
    expect(() => requireTokensOffLoopback(load({ http_port: 8080, http_host: "0.0.0.0", api_tokens: { ops: { token: "ops-token-0123456789", role: "operate" } } }))).not.toThrow();
  });
});
