import { describe, expect, test } from "bun:test";
import { createRedactor, MASK } from "../../src/core/redact.ts";

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

describe("masking that holds (issue 11.4)", () => {
  test("overlapping secrets: the union of their matches is masked", () => {
    const r = createRedactor(["xyzabc", "abcdef"]);
    expect(r("xyzabcdef")).toBe(MASK);
    expect(r("1 xyzabcdef 2 abcdef 3")).toBe(`1 ${MASK} 2 ${MASK} 3`);
    expect(createRedactor(["aaab", "baaa"])("aaabaaa")).toBe(MASK);
  });

  test("after the URL parser's normalisation: %27 for an apostrophe, lowercased hosts", () => {
    const quote = "it's-a-secret";
    const r = createRedactor([quote, "Tenant-XK9.Example.Test"]);
    const url = new URL(`https://tenant-xk9.example.test/p?q=${quote}`).href;
    expect(url).toContain("%27");
    expect(r(new URL(`https://Tenant-XK9.Example.Test/p?q=${quote}`).href)).toBe(`https://${MASK}/p?q=${MASK}`);
  });

  test("JSON escapes: \\/ and \\uXXXX in either case, mixed in one value", () => {
    const secret = "p/ss<wörd>&'";
    const r = createRedactor([secret]);
    const slashes = JSON.stringify(secret).replaceAll("/", "\\/");
    const unicode = JSON.stringify(secret).replace(/[<>&'ö]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
    const upper = unicode.replace(/\\u00([0-9a-f]{2})/g, (_, h: string) => `\\u00${h.toUpperCase()}`);
    for (const form of [slashes, unicode, upper]) expect(r(`{"echo":${form}}`)).toBe(`{"echo":"${MASK}"}`);
  });
});
