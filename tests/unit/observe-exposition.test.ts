import { describe, expect, test } from "bun:test";
import { escapeHelp, escapeLabelValue, formatValue, Registry } from "../../src/observe/exposition.ts";
import { parsePrometheusText, ParseError, valueOf } from "./observe-prom-parser.ts";

/** The Prometheus text format as written by src/observe/exposition.ts, read back by a strict parser. */

describe("exposition format", () => {
  test("escapes label values and HELP text exactly as the format defines", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeHelp('a\\b"c\nd')).toBe('a\\\\b"c\\nd');
    expect([formatValue(1), formatValue(0.25), formatValue(1e-7), formatValue(Infinity), formatValue(-Infinity), formatValue(NaN), formatValue(-0)]).toEqual([
      "1",
      "0.25",
      "1e-7",
      "+Inf",
      "-Inf",
      "NaN",
      "0",
    ]);
  });

  test("hostile label values and help text survive a round trip through the parser", () => {
    const r = new Registry();
    const hostile = ['quote " inside', "back\\slash", "new\nline", "}{,=\"", "日本語 ✓", "", "trailing\\"];
    const c = r.counter("x_total", 'Help with "quotes", a back\\slash\nand a newline.', ["job_name"]);
    hostile.forEach((name, i) => c.inc({ job_name: name }, i + 1));
    const families = parsePrometheusText(r.render());
    const family = families.get("x_total")!;
    expect(family.help).toBe('Help with "quotes", a back\\slash\nand a newline.');
    expect(family.samples.map((s) => [s.labels.job_name, s.value])).toEqual(hostile.map((name, i) => [name, i + 1]));
  });

  test("histograms are cumulative, end at +Inf and agree with _count and _sum", () => {
    const r = new Registry();
    const h = r.histogram("lat_seconds", "Lateness.", ["trigger"], [0.1, 1, 5]);
    for (const v of [0.05, 0.1, 0.5, 3, 7, 100]) h.observe({ trigger: "schedule" }, v);
    h.observe({ trigger: "takeover" }, 2);
    const text = r.render();
    const families = parsePrometheusText(text);
    const buckets = families.get("lat_seconds")!.samples.filter((s) => s.name === "lat_seconds_bucket" && s.labels.trigger === "schedule");
    expect(buckets.map((s) => [s.labels.le, s.value])).toEqual([
      ["0.1", 2],
      ["1", 3],
      ["5", 4],
      ["+Inf", 6],
    ]);
    expect(valueOf(families, "lat_seconds_count", { trigger: "schedule" })).toBe(6);
    expect(valueOf(families, "lat_seconds_sum", { trigger: "schedule" })).toBeCloseTo(110.65);
    expect(valueOf(families, "lat_seconds_count", { trigger: "takeover" })).toBe(1);
    expect(text).toContain("# TYPE lat_seconds histogram\n");
  });

  test("every family has HELP and TYPE once, before its samples, samples together; text ends with a newline", () => {
    const r = new Registry();
    const a = r.counter("a_total", "A.", ["k"]);
    const g = r.gauge("b", "B.");
    const n = r.counter("c_total", "C, no labels: present at 0 from the start.");
    a.inc({ k: "1" });
    g.set({}, 3.5);
    a.inc({ k: "2" }, 2);
    const text = r.render();
    expect(text.endsWith("\n")).toBe(true);
    expect(text).toBe(
      [
        "# HELP a_total A.",
        "# TYPE a_total counter",
        'a_total{k="1"} 1',
        'a_total{k="2"} 2',
        "# HELP b B.",
        "# TYPE b gauge",
        "b 3.5",
        "# HELP c_total C, no labels: present at 0 from the start.",
        "# TYPE c_total counter",
        "c_total 0",
        "",
      ].join("\n"),
    );
    expect(n.get()).toBe(0);
    expect(parsePrometheusText(text).size).toBe(3);
  });

  test("the registry refuses names and uses the format does not allow", () => {
    const r = new Registry();
    expect(() => r.counter("bad-name_total", "x")).toThrow("invalid metric name");
    expect(() => r.counter("runs", "x")).toThrow("_total");
    expect(() => r.gauge("g", "x", ["__reserved"])).toThrow("invalid label name");
    expect(() => r.histogram("h", "x", ["le"], [1])).toThrow("reserved");
    expect(() => r.histogram("h2", "x", [], [2, 1])).toThrow("increasing");
    r.gauge("dup", "x");
    expect(() => r.gauge("dup", "x")).toThrow("twice");
    const c = r.counter("c_total", "x", ["a"]);
    expect(() => c.inc({ a: "1" }, -1)).toThrow("only goes up");
    expect(() => c.inc({})).toThrow('label "a" missing');
    expect(() => c.inc({ a: "1", b: "2" })).toThrow("exactly");
  });
});

describe("the test parser is strict", () => {
  const bad: [string, string][] = [
    ["no newline at the end", "# TYPE a gauge\na 1"],
    ["sample without TYPE", "a 1\n"],
    ["invalid escape", '# TYPE a gauge\na{k="\\t"} 1\n'],
    ["unterminated label value", '# TYPE a gauge\na{k="x} 1\n'],
    ["duplicate series", "# TYPE a gauge\na 1\na 2\n"],
    ["interleaved families", '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n'],
    ["negative counter", "# TYPE a_total counter\na_total -1\n"],
    ["bad value", "# TYPE a gauge\na one\n"],
    ["two spaces", "# TYPE a gauge\na  1\n"],
    ["histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
    ["histogram not cumulative", '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ["+Inf bucket differs from _count", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
    ["TYPE twice", "# TYPE a gauge\n# TYPE a gauge\n"],
    ["unknown comment", "# hello\n"],
  ];
  for (const [what, text] of bad) {
    test(`rejects: ${what}`, () => {
      expect(() => parsePrometheusText(text)).toThrow(ParseError);
    });
  }
});
