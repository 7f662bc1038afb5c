import { describe, expect, test } from "bun:test";
import { parseJson } from "../../src/config/json.ts";

const errorOf = (text: string) => {
  const result = parseJson(text);
  if (result.ok) throw new Error("expected a JSON error");
  return `${result.line}:${result.column} ${result.message}`;
};

describe("parseJson", () => {
  test("valid JSON, with or without a byte-order mark", () => {
    expect(parseJson('{"a": [1, 2]}')).toEqual({ ok: true, value: { a: [1, 2] } });
    expect(parseJson('\uFEFF{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
  });

  test("errors say where and why", () => {
    expect(errorOf('{\n  "a": 1,\n  "b": x\n}')).toBe('3:8 expected a value, found "x" (names and strings need double quotes)');
    expect(errorOf('{"a": 1 "b": 2}')).toBe('1:9 expected "," or "}" after a property value, found a string');
  });

  test.each([
    ['[1, 2,]', '1:7 trailing comma before "]"'],
    ["{'a': 1}", "1:2 expected a property name in double quotes, found a single quote (JSON strings need double quotes)"],
    ['{"a": "x\ny"}', "1:9 line break or control character inside a string (write it as \\n, \\t, …)"],
    ['{"a": 1', '1:8 expected "," or "}" after a property value, found the end of the file'],
    ["", "1:1 expected a value, found the end of the file"],
    ['{"a": 1} x', "1:10 unexpected text after the end of the JSON value"],
    ['"\\q"', '1:2 invalid escape "\\q" in a string'],
  ])("%p", (text, expected) => {
    expect(errorOf(text)).toBe(expected);
  });
});
