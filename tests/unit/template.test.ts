import { describe, expect, test } from "bun:test";
import { checkTemplateName, renderString, renderValue, TemplateError, templateNames, type TemplateContext } from "../../src/executor/template.ts";

const ctx = (steps: TemplateContext["steps"] = {}): TemplateContext => ({
  secrets: { API_TOKEN: "tok-123", BASE_URL: "https://api.example.test" },
  builtins: {
    run_id: "job1:2025-01-01T00:00:00.000Z",
    scheduled_for: "2025-01-01T00:00:00.000Z",
    "job.name": "nightly",
    machine_id: "m-1",
    attempt: "2",
  },
  steps,
});

describe("renderString", () => {
  test("secrets and built-ins, spaces inside braces allowed", () => {
    expect(renderString("{{BASE_URL}}/x?t={{ API_TOKEN }}", ctx())).toBe("https://api.example.test/x?t=tok-123");
    expect(renderString("{{run_id}}|{{scheduled_for}}|{{job.name}}|{{machine_id}}|{{attempt}}", ctx())).toBe(
      "job1:2025-01-01T00:00:00.000Z|2025-01-01T00:00:00.000Z|nightly|m-1|2",
    );
  });

  test("earlier steps: status, body and JSON paths (including array indexes)", () => {
    const c = ctx({ login: { status: 201, body: '{"token":"abc","n":3,"user":{"id":7},"items":[{"id":"i0"}]}', json: { token: "abc", n: 3, user: { id: 7 }, items: [{ id: "i0" }] } } });
    expect(renderString("{{steps.login.status}}", c)).toBe("201");
    expect(renderString("{{steps.login.json.token}}", c)).toBe("abc");
    expect(renderString("{{steps.login.json.n}}", c)).toBe("3");
    expect(renderString("{{steps.login.json.user}}", c)).toBe('{"id":7}');
    expect(renderString("{{steps.login.json.items.0.id}}", c)).toBe("i0");
    expect(renderString("{{steps.login.body}}", c)).toContain('"token":"abc"');
  });

  test("a step name with spaces (the seed's style) works", () => {
    expect(renderString("{{steps.Fetch Data.status}}", ctx({ "Fetch Data": { status: 200, body: "" } }))).toBe("200");
  });

  test("a step with no answer renders its status as empty", () => {
    expect(renderString("[{{steps.a.status}}]", ctx({ a: { status: null, body: "" } }))).toBe("[]");
  });

  test("unknown names are errors, never literal text", () => {
    expect(() => renderString("Bearer {{API_SECRET}}", ctx())).toThrow(TemplateError);
    expect(() => renderString("{{steps.nope.status}}", ctx())).toThrow(/has not run/);
    expect(() => renderString("{{steps.a.json.missing}}", ctx({ a: { status: 200, body: "{}", json: {} } }))).toThrow(/no such JSON value/);
    expect(() => renderString("{{steps.a.json.x}}", ctx({ a: { status: 200, body: "not json" } }))).toThrow(TemplateError);
  });

  test("Object.prototype names are unknown, not leaked functions", () => {
    for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
      expect(() => renderString(`{{${name}}}`, ctx())).toThrow(TemplateError);
    }
    expect(() => renderString("{{steps.constructor.status}}", ctx())).toThrow(/has not run/);
    expect(() => renderString("{{steps.a.json.constructor}}", ctx({ a: { status: 200, body: "{}", json: {} } }))).toThrow(TemplateError);
  });

  test("a secret value containing braces or $ patterns is inserted verbatim, not re-rendered", () => {
    const c = ctx();
    c.secrets.WEIRD = "$& {{API_TOKEN}} $1";
    expect(renderString("x={{WEIRD}}", c)).toBe("x=$& {{API_TOKEN}} $1");
  });
});

describe("renderValue", () => {
  test("renders strings inside objects and arrays, leaves keys and other values", () => {
    expect(renderValue({ "{{job.name}}": ["{{attempt}}", 1, true, null, { t: "{{API_TOKEN}}" }] }, ctx())).toEqual({
      "{{job.name}}": ["2", 1, true, null, { t: "tok-123" }],
    });
  });
});

describe("checkTemplateName", () => {
  test("accepts built-ins, secrets and earlier steps; explains the rest", () => {
    expect(checkTemplateName("run_id", [], [])).toBeNull();
    expect(checkTemplateName("API_TOKEN", ["API_TOKEN"], [])).toBeNull();
    expect(checkTemplateName("steps.a.json.x.y", [], ["a"])).toBeNull();
    expect(checkTemplateName("steps.b.status", [], ["a"])).toContain('step "b"');
    expect(checkTemplateName("steps.a", [], ["a"])).toContain("not a step reference");
    expect(checkTemplateName("NOPE", ["API_TOKEN"], [])).toContain("unknown template name {{NOPE}}");
  });

  test("templateNames lists names in order", () => {
    expect(templateNames("{{a}}-{{ b.c }}-x")).toEqual(["a", "b.c"]);
  });
});

describe("trust: where an untrusted step value lands (issue 13.3)", () => {
  const c = () => ({ ...ctx({ s: { status: 200, body: 'a&b=c/../d "q"\r\nX: y' } }), vars: { HOST: "https://h.test" } });

  test("url percent-encodes, a string body JSON-escapes, a header refuses CR/LF; raw inserts as written", () => {
    expect(renderString("{{HOST}}/x?q={{steps.s.body}}", c(), "url")).toBe(`https://h.test/x?q=${encodeURIComponent('a&b=c/../d "q"\r\nX: y')}`);
    expect(renderString('{"v":"{{steps.s.body}}"}', c(), "body")).toBe(JSON.stringify({ v: 'a&b=c/../d "q"\r\nX: y' }));
    expect(() => renderString("{{steps.s.body}}", c(), "header")).toThrow("holds a CR or LF");
    expect(renderString("{{raw steps.s.body}}", c(), "url")).toBe('a&b=c/../d "q"\r\nX: y');
    // Config values are trusted: inserted as written everywhere.
    expect(renderString("{{API_TOKEN}}/{{HOST}}", c(), "url")).toBe("tok-123/https://h.test");
  });

  test("raw applies to step references only; vars are template names", () => {
    expect(checkTemplateName("raw steps.a.body", [], ["a"])).toBeNull();
    expect(checkTemplateName("raw API_TOKEN", ["API_TOKEN"], [])).toContain('"raw" applies only to step outputs');
    expect(checkTemplateName("raw steps.later.body", [], [])).toContain("does not run before this one");
  });
});
