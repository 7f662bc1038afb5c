/**
 * The timer floor: a bare process with `croner` firing every second and one fetch to the sink, no
 * store, no coordination. Lateness here is what the runtime's timers and the loopback cost alone.
 * BENCH_SINK is the sink URL.
 */
import { Cron } from "croner";

const sink = process.env.BENCH_SINK!;
new Cron("* * * * * *", { timezone: "UTC" }, async () => {
  // croner fires on the second; rounding (not flooring) keeps an early fire from reading as 1 s late.
  const at = Math.round(Date.now() / 1000) * 1000;
  const res = await fetch(`${sink}/croner?sys=croner&m=croner&job=tick&at=${at}`);
  await res.arrayBuffer();
});
process.stdout.write("ready\n");
