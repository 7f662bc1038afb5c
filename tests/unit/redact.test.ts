import { describe, expect, test } from "bun:test";
import { createRedactor, MASK, redactUri } from "../../src/core/redact.ts";

describe("createRedactor", () => {
  test("masks every occurrence, longest secret first", () => {
    const r = createRedactor(["abc", "abcdef"]);
    expect(r("x abcdef y abc")).toBe(`x ${MASK} y ${MASK}`);
  });

  test("ignores very short and empty values, and is identity without secrets", () => {
    expect(createRedactor(["", "1"])("a 1 b")).toBe("a 1 b");
    expect(createRedactor([])("anything")).toBe("anything");
  });

  test("regex metacharacters in secrets are literal", () => {
    expect(createRedactor(["a.b*c(d)"])("a.b*c(d) aXbbc")).toBe(`${MASK} aXbbc`);
  });

  test("percent-encoded and JSON-escaped forms are masked too", () => {
    const secret = 's3cr/et "v@lue"';
    const r = createRedactor([secret]);
    const url = new URL(`https://h.test/p/${secret}?q=${encodeURIComponent(secret)}`).href;
    expect(r(url)).not.toContain("s3cr");
    expect(r(JSON.stringify({ echoed: secret }))).not.toContain("s3cr");
  });

  test("a secret cut at the end of a truncated text is masked", () => {
    const r = createRedactor(["SUPERSECRETTOKEN", "abc"]);
    expect(r("body... SUPERSEC", { truncated: true })).toBe(`body... ${MASK}`);
    // without the hint the fragment is not a secret (it might be ordinary text)
    expect(r("body... SUPERSEC")).toBe("body... SUPERSEC");
    // the longest fragment wins even when a shorter secret also matches the tail
    const r2 = createRedactor(["bcdXXXXXXXXX", "abcdY"]);
    expect(r2("..abcd", { truncated: true })).toBe(`..${MASK}`);
  });
});

describe("redactUri", () => {
  test("hides the password, even one with an unescaped @", () => {
    expect(redactUri("mongodb://user:secret@host:27017/db")).toBe(`mongodb://user:${MASK}@host:27017/db`);
    expect(redactUri("mongodb+srv://user:p@ss@cluster.example/")).toBe(`mongodb+srv://user:${MASK}@cluster.example/`);
    expect(redactUri("mongodb://host/db")).toBe("mongodb://host/db");
  });
});
