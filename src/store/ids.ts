/**
 * New job ids look like MongoDB ObjectIds (24 hex digits), so ids read the same whichever store a
 * job was created in, and `run_id = <job id>@<instant>` keeps one shape.
 */
export function newJobId(now = Date.now()): string {
  const seconds = Math.floor(now / 1000).toString(16).padStart(8, "0");
  const random = [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join("");
  return seconds + random;
}
